//! Performance statistics for a walk-forward report: moments of per-period returns, Sharpe,
//! Sortino, Calmar, CAGR, drawdown duration, the standard normal distribution, the probabilistic
//! and deflated Sharpe ratios (Bailey & López de Prado 2012, 2014) and the probability of
//! backtest overfitting by combinatorially symmetric cross-validation (Bailey, Borwein,
//! López de Prado & Zhu 2015).
//!
//! Pure math on `f64` ratios: it never touches money (that stays `Decimal` elsewhere), files, the
//! clock or any dependency beyond `std`. Every formula is checked in the tests below against a
//! value worked by hand or a published example.
//!
//! Conventions: returns are simple per-period returns (`0.01` = +1 %); every Sharpe ratio here is
//! per period with a risk-free rate of 0 unless its name says otherwise; a year is 365 days (the
//! crypto market never closes), so daily figures annualize with `√365`.

/// Days in a year for [`cagr`]: crypto trades every calendar day.
pub const DAYS_PER_YEAR: f64 = 365.0;

/// The Euler–Mascheroni constant γ, used by [`expected_max_sharpe`].
pub const EULER_MASCHERONI: f64 = 0.577_215_664_901_532_9;

/// Arithmetic mean `μ = (1/T)·Σ rₜ`. `None` for an empty slice.
pub fn mean(returns: &[f64]) -> Option<f64> {
    if returns.is_empty() {
        return None;
    }
    Some(returns.iter().sum::<f64>() / returns.len() as f64)
}

/// Sample standard deviation with Bessel's correction, `s = √( Σ (rₜ − μ)² / (T − 1) )`, the
/// denominator of the Sharpe ratio in Sharpe (1994), "The Sharpe Ratio", *Journal of Portfolio
/// Management* 21(1). Computed in two passes for accuracy. `None` with fewer than two values.
pub fn std_dev(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let mu = mean(returns)?;
    let ss: f64 = returns.iter().map(|r| (r - mu).powi(2)).sum();
    Some((ss / (returns.len() as f64 - 1.0)).sqrt())
}

/// Central moments `m₂, m₃, m₄` with `mₖ = (1/T)·Σ (rₜ − μ)ᵏ`.
fn central_moments(returns: &[f64]) -> Option<(f64, f64, f64)> {
    let mu = mean(returns)?;
    let n = returns.len() as f64;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for r in returns {
        let d = r - mu;
        let d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    Some((m2 / n, m3 / n, m4 / n))
}

/// Skewness `γ₃ = m₃ / m₂^{3/2}` with `mₖ = (1/T)·Σ (rₜ − μ)ᵏ` — the moment-ratio estimator `g₁`
/// of Joanes & Gill (1998), "Comparing measures of sample skewness and kurtosis", *The
/// Statistician* 47(1), and the `γ₃` that Bailey & López de Prado (2012) feed into the
/// probabilistic Sharpe ratio. `None` with fewer than two values or zero variance.
pub fn skewness(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let (m2, m3, _) = central_moments(returns)?;
    (m2 > 0.0).then(|| m3 / m2.powf(1.5))
}

/// Kurtosis `γ₄ = m₄ / m₂²` (NOT excess: a normal distribution has 3), with
/// `mₖ = (1/T)·Σ (rₜ − μ)ᵏ` — the estimator `b₂ = g₂ + 3` of Joanes & Gill (1998), "Comparing
/// measures of sample skewness and kurtosis", *The Statistician* 47(1), and the `γ₄` of Bailey &
/// López de Prado (2012). `None` with fewer than two values or zero variance.
pub fn kurtosis(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let (m2, _, m4) = central_moments(returns)?;
    (m2 > 0.0).then(|| m4 / (m2 * m2))
}

/// `1/√π`.
const FRAC_1_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI / 2.0;

/// Below this argument `erfc` is `1 − erf` by the series, above it the continued fraction. At 1
/// the series loses about 2.5 bits to the subtraction `1 − erf` and the continued fraction
/// converges within about 200 terms; both stay within ~5e-15 of `erfc` relative.
const ERFC_SWITCH: f64 = 1.0;

/// `erf(x)` for `0 ≤ x < ERFC_SWITCH` by the all-positive series of Abramowitz & Stegun (1964),
/// *Handbook of Mathematical Functions*, eq. 7.1.6:
/// `erf x = (2/√π)·e^{−x²}·Σₙ 2ⁿ x^{2n+1} / (1·3·5···(2n+1))`. No term cancels another, so the
/// sum is exact to rounding.
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    for n in 0..300 {
        term *= 2.0 * x2 / f64::from(2 * n + 3);
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    std::f64::consts::FRAC_2_SQRT_PI * (-x2).exp() * sum
}

/// `erfc(x)` for `x ≥ ERFC_SWITCH` by the continued fraction of Abramowitz & Stegun (1964),
/// eq. 7.1.14: `√π·e^{x²}·erfc x = 1/(x+ (1/2)/(x+ 1/(x+ (3/2)/(x+ 2/(x+ …)))))`, evaluated
/// with the modified Lentz method (Thompson & Barnett 1986, *J. Comput. Phys.* 64). Accurate to
/// rounding *relative* to `erfc x`, however small.
fn erfc_continued_fraction(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    // f = b₀ + a₁/(b₁ + a₂/(b₂ + …)) with b₀ = 0, a₁ = 1, aⱼ = (j − 1)/2, bⱼ = x.
    let mut f = TINY;
    let mut c = f;
    let mut d = 0.0;
    for j in 1..500 {
        let a = if j == 1 { 1.0 } else { f64::from(j - 1) / 2.0 };
        d = x + a * d;
        if d == 0.0 {
            d = TINY;
        }
        c = x + a / c;
        if c == 0.0 {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() * FRAC_1_SQRT_PI * f
}

/// Complementary error function, `erfc x = 1 − erf x`.
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        f64::NAN
    } else if x > 30.0 {
        // erfc(27) ≈ 5e−319 is already the last subnormal; beyond it the answer is 0 (and ∞ would
        // make the continued fraction ∞·0).
        0.0
    } else if x < 0.0 {
        2.0 - erfc(-x)
    } else if x < ERFC_SWITCH {
        1.0 - erf_series(x)
    } else {
        erfc_continued_fraction(x)
    }
}

/// Standard normal cumulative distribution function, `Φ(x) = ½·erfc(−x/√2)`, with `erfc` from
/// Abramowitz & Stegun (1964), *Handbook of Mathematical Functions*: the series 7.1.6 for
/// `|x/√2| < 1` and the continued fraction 7.1.14 beyond it. Absolute error below 1e-15
/// everywhere; for `x < 0` the error is also within ~1e-14 *relative* to `Φ(x)`, however far
/// out in the tail.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Acklam's rational approximation of `Φ⁻¹(p)` for `0 < p ≤ 0.5` (relative error < 1.15e-9).
fn acklam_lower(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// `Φ⁻¹(p)` for `0 < p ≤ 0.5`: Acklam's value, then one Halley step on `Φ(x) − p`.
fn norm_inv_lower(p: f64) -> f64 {
    let x = acklam_lower(p);
    // φ(x) = e^{−x²/2}/√(2π); once it is subnormal the step would divide by (almost) zero, and
    // Acklam's 1.15e-9 is all that is asked for that far out (p < 1e-308).
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    if pdf < f64::MIN_POSITIVE {
        return x;
    }
    let u = (norm_cdf(x) - p) / pdf;
    x - u / (1.0 + 0.5 * x * u)
}

/// Inverse standard normal CDF (quantile function) `Φ⁻¹(p)`: P. J. Acklam (2003), "An algorithm
/// for computing the inverse normal cumulative distribution function" (rational approximations
/// with relative error below 1.15e-9), refined by one step of Halley's method
/// `x ← x − u/(1 + x·u/2)`, `u = (Φ(x) − p)/φ(x)`, as Acklam recommends; the result agrees with
/// Wichura's AS241 to about 1e-14. Upper-half probabilities use `Φ⁻¹(p) = −Φ⁻¹(1 − p)`, which is
/// exact because `1 − p` is exact for `p ≥ ½`.
///
/// Returns `−∞` at 0, `+∞` at 1 and NaN outside `[0, 1]` or for NaN.
pub fn norm_inv(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        f64::NAN
    } else if p == 0.0 {
        f64::NEG_INFINITY
    } else if p == 1.0 {
        f64::INFINITY
    } else if p > 0.5 {
        -norm_inv_lower(1.0 - p)
    } else {
        norm_inv_lower(p)
    }
}

/// Per-period Sharpe ratio with a risk-free rate of 0, `SR = μ / s` (mean over the sample
/// standard deviation, see [`std_dev`]) — Sharpe (1966), "Mutual Fund Performance", *Journal of
/// Business* 39(1), in the ex-post form of Sharpe (1994), "The Sharpe Ratio", *Journal of
/// Portfolio Management* 21(1). `None` with fewer than two returns or zero deviation.
pub fn sharpe_per_period(returns: &[f64]) -> Option<f64> {
    let s = std_dev(returns)?;
    let mu = mean(returns)?;
    (s > 0.0).then(|| mu / s)
}

/// Annualizes a per-period Sharpe ratio: `SR_year = SR · √q` with `q` periods a year (365 for
/// daily crypto returns) — Lo (2002), "The Statistics of Sharpe Ratios", *Financial Analysts
/// Journal* 58(4), eq. for IID returns (serial correlation would change the factor).
pub fn annualize(sr: f64, periods_per_year: f64) -> f64 {
    sr * periods_per_year.sqrt()
}

/// Annualized Sortino ratio with a target return of 0: `μ / DD · √q`, where the downside
/// deviation `DD = √( (1/T)·Σₜ min(rₜ, 0)² )` runs over *all* `T` periods (the ones above the
/// target contribute zero) — Sortino & Price (1994), "Performance Measurement in a Downside Risk
/// Framework", *Journal of Investing* 3(3). The same definition as `report::sortino` with
/// `q = 365`. `None` with fewer than two returns or without a losing period.
pub fn sortino(returns: &[f64], periods_per_year: f64) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let mu = mean(returns)?;
    let dd2 = returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / returns.len() as f64;
    (dd2 > 0.0).then(|| mu / dd2.sqrt() * periods_per_year.sqrt())
}

/// Calmar ratio `CAGR / MaxDD`, the maximum drawdown given as a positive fraction of the peak
/// (0.25 for a 25 % fall) — Young (1991), "Calmar Ratio: A Smoother Tool", *Futures* 20(1).
/// `None` unless the drawdown is positive and finite.
pub fn calmar(cagr: f64, max_dd_fraction: f64) -> Option<f64> {
    (max_dd_fraction > 0.0 && max_dd_fraction.is_finite()).then(|| cagr / max_dd_fraction)
}

/// Compound annual growth rate `(final/initial)^{365/days} − 1` (a year is [`DAYS_PER_YEAR`]
/// calendar days; the geometric mean rate of growth). `None` unless `initial > 0`,
/// `final ≥ 0` and `days > 0`.
pub fn cagr(initial_equity: f64, final_equity: f64, days: f64) -> Option<f64> {
    let valid = initial_equity > 0.0
        && initial_equity.is_finite()
        && final_equity >= 0.0
        && final_equity.is_finite()
        && days > 0.0
        && days.is_finite();
    valid.then(|| (final_equity / initial_equity).powf(DAYS_PER_YEAR / days) - 1.0)
}

/// Longest drawdown duration in milliseconds: the longest "time under water" (López de Prado
/// 2018, *Advances in Financial Machine Learning*, ch. 14, "Backtest Statistics"; Bailey &
/// López de Prado 2015, "Stop-outs under serial correlation and 'the triple penance rule'",
/// *Journal of Risk* 18(2)). An episode runs from the time of the peak to the first later point
/// whose equity is back at or above that peak, or to the last point if it never recovers.
///
/// `Some(0)` when the curve never falls below a peak (or is empty). `None` when the slices differ
/// in length, the times go backwards or an equity value is NaN.
pub fn drawdown_duration(times_ms: &[i64], equity: &[f64]) -> Option<i64> {
    if times_ms.len() != equity.len()
        || equity.iter().any(|e| e.is_nan())
        || times_ms.windows(2).any(|w| w[1] < w[0])
    {
        return None;
    }
    let (Some(&t0), Some(&e0)) = (times_ms.first(), equity.first()) else {
        return Some(0);
    };
    let (mut peak, mut peak_t) = (e0, t0);
    let mut under = false;
    let mut longest = 0i64;
    for (&t, &e) in times_ms.iter().zip(equity).skip(1) {
        if e >= peak {
            if under {
                longest = longest.max(t - peak_t);
                under = false;
            }
            peak = e;
            peak_t = t;
        } else {
            under = true;
        }
    }
    if under && let Some(&last) = times_ms.last() {
        longest = longest.max(last - peak_t);
    }
    Some(longest)
}

/// Probabilistic Sharpe ratio, the probability that the true Sharpe ratio exceeds `sr_star`:
/// `PSR(SR*) = Φ( (SR − SR*)·√(T − 1) / √(1 − γ₃·SR + (γ₄ − 1)/4·SR²) )` — Bailey & López de
/// Prado (2012), "The Sharpe Ratio Efficient Frontier", *Journal of Risk* 15(2), building on the
/// variance of the Sharpe estimator under non-normal returns of Mertens (2002).
///
/// `sr` and `sr_star` are per-period (not annualized) Sharpe ratios over `t` periods, `skew` is
/// γ₃ and `kurt` is γ₄ (not excess: 3 for normal returns) of those returns. `None` when `t < 2`
/// or the variance term under the root is not positive.
pub fn probabilistic_sharpe(sr: f64, sr_star: f64, t: usize, skew: f64, kurt: f64) -> Option<f64> {
    if t < 2 {
        return None;
    }
    let var_term = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr;
    if !(var_term > 0.0 && var_term.is_finite()) {
        return None;
    }
    let z = (sr - sr_star) * ((t - 1) as f64).sqrt() / var_term.sqrt();
    Some(norm_cdf(z))
}

/// Expected maximum Sharpe ratio of `N` independent trials whose true Sharpe is zero, the
/// benchmark `SR₀` of the deflated Sharpe ratio:
/// `SR₀ = √V · ( (1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)) )`, γ the Euler–Mascheroni constant,
/// `V` the variance of the trials' Sharpe ratios — Bailey & López de Prado (2014), "The Deflated
/// Sharpe Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality",
/// *Journal of Portfolio Management* 40(5), pp. 94–107.
///
/// The result is in the units of `V`: pass the variance of *per-period* Sharpe ratios to get a
/// per-period benchmark (an annualized variance divides by the periods per year). `Some(0)` for
/// a single trial (no selection); `None` for zero trials or a negative or non-finite `V`.
pub fn expected_max_sharpe(n_trials: usize, var_of_trial_sharpes: f64) -> Option<f64> {
    if n_trials == 0 || !(var_of_trial_sharpes >= 0.0 && var_of_trial_sharpes.is_finite()) {
        return None;
    }
    if n_trials == 1 {
        return Some(0.0);
    }
    let n = n_trials as f64;
    let g = EULER_MASCHERONI;
    let z =
        (1.0 - g) * norm_inv(1.0 - 1.0 / n) + g * norm_inv(1.0 - 1.0 / (n * std::f64::consts::E));
    Some(var_of_trial_sharpes.sqrt() * z)
}

/// Deflated Sharpe ratio `DSR = PSR(SR₀)`, the probabilistic Sharpe ratio against the Sharpe
/// ratio the best of `n_trials` would reach by luck ([`expected_max_sharpe`]) — Bailey & López de
/// Prado (2014), "The Deflated Sharpe Ratio", *Journal of Portfolio Management* 40(5).
///
/// All Sharpe figures are per period: `sr` over `t` periods, and `var_of_trial_sharpes` the
/// variance of the trials' per-period Sharpe ratios. Every configuration tried counts in
/// `n_trials`. `None` where [`expected_max_sharpe`] or [`probabilistic_sharpe`] is.
pub fn deflated_sharpe(
    sr: f64,
    t: usize,
    skew: f64,
    kurt: f64,
    n_trials: usize,
    var_of_trial_sharpes: f64,
) -> Option<f64> {
    let sr0 = expected_max_sharpe(n_trials, var_of_trial_sharpes)?;
    probabilistic_sharpe(sr, sr0, t, skew, kurt)
}

/// The probability of backtest overfitting and what it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Pbo {
    /// Share of the combinations whose in-sample winner ranked at or below the out-of-sample
    /// median (`λ ≤ 0`).
    pub pbo: f64,
    /// Number of in-sample/out-of-sample splits evaluated, `C(S, S/2)`.
    pub combinations: usize,
    /// The logit `λ = ln(ω/(1 − ω))` of each split, in the lexicographic order of the in-sample
    /// block sets.
    pub logits: Vec<f64>,
}

/// Running count, mean and sum of squared deviations of one trial over some rows.
#[derive(Debug, Clone, Copy)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    const EMPTY: Self = Self {
        n: 0.0,
        mean: 0.0,
        m2: 0.0,
    };

    /// Chan, Golub & LeVeque's pairwise update: merges two disjoint sets without cancellation.
    fn merge(self, o: Self) -> Self {
        if self.n == 0.0 {
            return o;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        Self {
            n,
            mean: self.mean + delta * o.n / n,
            m2: self.m2 + o.m2 + delta * delta * self.n * o.n / n,
        }
    }

    /// Sharpe ratio for ranking: `mean / s`; with zero deviation, `±∞` by the sign of the mean
    /// (a riskless gain beats any risky one) or 0.
    fn sharpe(self) -> f64 {
        let var = self.m2 / (self.n - 1.0);
        if var > 0.0 {
            self.mean / var.sqrt()
        } else if self.mean > 0.0 {
            f64::INFINITY
        } else if self.mean < 0.0 {
            f64::NEG_INFINITY
        } else {
            0.0
        }
    }
}

/// Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV) —
/// Bailey, Borwein, López de Prado & Zhu (2015), "The Probability of Backtest Overfitting"
/// (*Journal of Computational Finance* 20(4), 2017).
///
/// `matrix` has `T` rows (periods, in time order) of `N` trials' per-period returns. The rows are
/// cut into `s_blocks = S` contiguous blocks (sizes differ by at most one row when `S` does not
/// divide `T`: block `k` holds rows `k·T/S .. (k+1)·T/S`). For each of the `C(S, S/2)` choices of
/// `S/2` blocks as the in-sample set `J` (the rest, `J̄`, out of sample):
/// 1. rank the trials by Sharpe ratio on `J` and take the best `n*` (the lowest index on a tie);
/// 2. find its rank `r` among the trials' Sharpe ratios on `J̄` (1 = worst … N = best, tied
///    values share their average rank) and its relative rank `ω = r/(N + 1)`;
/// 3. take the logit `λ = ln(ω/(1 − ω))`.
///
/// `PBO = #{λ ≤ 0} / C(S, S/2)`. A Sharpe ratio with zero deviation ranks as `±∞` by its mean's
/// sign. The cost grows as `C(S, S/2)·S·N` after one pass over the matrix; `S = 16` is 12 870
/// splits.
///
/// `None` when `N < 2`, rows differ in length, a value is not finite, `S` is odd or below 2, or
/// `T < 2·S` (every block needs two rows).
pub fn pbo_cscv(matrix: &[Vec<f64>], s_blocks: usize) -> Option<Pbo> {
    let t = matrix.len();
    let n = matrix.first()?.len();
    if n < 2
        || s_blocks < 2
        || !s_blocks.is_multiple_of(2)
        || t < 2 * s_blocks
        || matrix
            .iter()
            .any(|row| row.len() != n || row.iter().any(|v| !v.is_finite()))
    {
        return None;
    }

    // Per block and trial: count, mean and squared deviations (two passes within the block).
    let blocks: Vec<Vec<Moments>> = (0..s_blocks)
        .map(|k| {
            let rows = &matrix[k * t / s_blocks..(k + 1) * t / s_blocks];
            let len = rows.len() as f64;
            (0..n)
                .map(|j| {
                    let mean = rows.iter().map(|r| r[j]).sum::<f64>() / len;
                    let m2 = rows.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>();
                    Moments { n: len, mean, m2 }
                })
                .collect()
        })
        .collect();

    let half = s_blocks / 2;
    let mut chosen: Vec<usize> = (0..half).collect();
    let mut in_set = vec![false; s_blocks];
    let mut logits = Vec::new();
    loop {
        in_set.iter_mut().for_each(|b| *b = false);
        chosen.iter().for_each(|&k| in_set[k] = true);

        let mut is = vec![Moments::EMPTY; n];
        let mut oos = vec![Moments::EMPTY; n];
        for (block, &inside) in blocks.iter().zip(&in_set) {
            let side = if inside { &mut is } else { &mut oos };
            for (acc, m) in side.iter_mut().zip(block) {
                *acc = acc.merge(*m);
            }
        }
        let is_sr: Vec<f64> = is.iter().map(|m| m.sharpe()).collect();
        let oos_sr: Vec<f64> = oos.iter().map(|m| m.sharpe()).collect();

        let mut best = 0;
        for (j, &v) in is_sr.iter().enumerate() {
            if v > is_sr[best] {
                best = j;
            }
        }
        let target = oos_sr[best];
        let below = oos_sr.iter().filter(|&&v| v < target).count() as f64;
        let equal = oos_sr.iter().filter(|&&v| v == target).count() as f64;
        let rank = below + (equal + 1.0) / 2.0;
        let omega = rank / (n as f64 + 1.0);
        logits.push((omega / (1.0 - omega)).ln());

        // Next `half`-subset of 0..s_blocks in lexicographic order.
        let Some(i) = (0..half).rev().find(|&i| chosen[i] < s_blocks - half + i) else {
            break;
        };
        chosen[i] += 1;
        for k in i + 1..half {
            chosen[k] = chosen[k - 1] + 1;
        }
    }

    let overfit = logits.iter().filter(|&&l| l <= 0.0).count();
    Some(Pbo {
        pbo: overfit as f64 / logits.len() as f64,
        combinations: logits.len(),
        logits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tol: f64) -> bool {
        (actual - expected).abs() <= tol
    }

    #[track_caller]
    fn assert_close(actual: f64, expected: f64, tol: f64) {
        assert!(
            close(actual, expected, tol),
            "{actual} is not within {tol} of {expected}"
        );
    }

    #[track_caller]
    fn assert_rel(actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= rel * expected.abs(),
            "{actual} is not within {rel} (relative) of {expected}"
        );
    }

    // ---- normal distribution ----------------------------------------------------------------

    #[test]
    fn norm_cdf_matches_published_values() {
        // Φ(0) = ½ exactly: erfc(0) = 1 − erf(0) = 1 − 0.
        assert_eq!(norm_cdf(0.0), 0.5);
        // Standard tables / the value quoted in the brief.
        assert_close(norm_cdf(1.96), 0.975_002_104_851_779_5, 1e-15);
        assert_close(norm_cdf(-1.96), 0.024_997_895_148_220_435, 1e-15);
        assert_close(norm_cdf(1.0), 0.841_344_746_068_542_9, 1e-15);
        assert_close(norm_cdf(3.0), 0.998_650_101_968_369_9, 1e-15);
        // Tails, relative to the tiny value: Φ(−10) = 7.619853024160527e-24 (Wolfram|Alpha,
        // CPython's 0.5*math.erfc(10/√2) gives …593e-24), Φ(−30) = 4.906713927148764e-198
        // (CPython).
        assert_rel(norm_cdf(-10.0), 7.619_853_024_160_527e-24, 1e-13);
        assert_rel(norm_cdf(-30.0), 4.906_713_927_148_764e-198, 1e-13);
        assert_eq!(norm_cdf(f64::NEG_INFINITY), 0.0);
        assert_eq!(norm_cdf(f64::INFINITY), 1.0);
        assert!(norm_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn erfc_series_and_continued_fraction_agree_at_the_switch() {
        // Both branches evaluated around the switch point (1.0) must agree to rounding: a wrong
        // term in either would show here as a jump.
        for x in [0.8, 0.9, 1.0, 1.1, 1.2] {
            let series = 1.0 - erf_series(x);
            let cf = erfc_continued_fraction(x);
            assert_rel(series, cf, 1e-14);
        }
        // erfc at points on both sides (A&S table 7.1 to its 10 digits; the full digits are
        // CPython's math.erfc, i.e. the C library's), relative to the value.
        for (x, want) in [
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_265),
            (5.0, 1.537_459_794_428_035_1e-12),
            (20.0, 5.395_865_611_607_900_5e-176),
        ] {
            assert_rel(erfc(x), want, 1e-14);
            assert_rel(erfc(-x), 2.0 - want, 1e-15);
        }
    }

    #[test]
    fn norm_inv_matches_published_values() {
        assert_close(norm_inv(0.975), 1.959_963_984_540_054, 1e-14);
        assert_close(norm_inv(0.025), -1.959_963_984_540_054, 1e-14);
        assert_eq!(norm_inv(0.5), 0.0);
        // z₀.₉₉ = 2.3263478740408408 (CPython statistics.NormalDist, Wichura AS241).
        assert_close(norm_inv(0.99), 2.326_347_874_040_840_8, 1e-14);
        // Φ⁻¹(1e−10) = −6.361340902404056 and Φ⁻¹(1e−300) = −37.0470962993612 (same source).
        assert_rel(norm_inv(1e-10), -6.361_340_902_404_056, 1e-14);
        assert_rel(norm_inv(1e-300), -37.047_096_299_361_2, 1e-13);
        assert_eq!(norm_inv(0.0), f64::NEG_INFINITY);
        assert_eq!(norm_inv(1.0), f64::INFINITY);
        assert!(norm_inv(-0.1).is_nan() && norm_inv(1.1).is_nan() && norm_inv(f64::NAN).is_nan());
    }

    #[test]
    fn norm_inv_round_trips_through_norm_cdf() {
        // Φ(Φ⁻¹(p)) = p for p across both tails and the centre; relative to min(p, 1 − p).
        let mut ps = vec![1e-300, 1e-100, 1e-20, 1e-8, 1e-4, 0.01, 0.02425, 0.3, 0.5];
        ps.extend((1..100).map(|i| f64::from(i) / 100.0));
        ps.extend([0.975, 0.999, 1.0 - 1e-9]);
        for p in ps {
            let back = norm_cdf(norm_inv(p));
            let scale = p.min(1.0 - p);
            assert!(
                (back - p).abs() <= 1e-12 * scale + 1e-16,
                "p = {p}: Φ(Φ⁻¹(p)) = {back}"
            );
        }
        // And x → Φ(x) → Φ⁻¹ returns x, from the far lower tail up to x = 3. Above that the
        // test itself is ill-posed: Φ(x) rounds to within 1.1e-16 of 1 and so fixes x only to
        // about 1.1e-16/φ(x) (≈ 2e-9 at x = 5.8) — Φ⁻¹ is exact for the p it is given.
        for i in -370..=30 {
            let x = f64::from(i) / 10.0;
            assert_close(norm_inv(norm_cdf(x)), x, 1e-12);
        }
    }

    #[test]
    fn acklam_coefficients_give_the_published_accuracy_before_refinement() {
        // Acklam states a relative error below 1.15e-9 for the raw approximation; if a
        // coefficient were mistyped the refinement would hide it, so check the raw value.
        for i in 1..=5000 {
            let p = f64::from(i) / 10_000.0; // 0.0001 ..= 0.5
            let exact = norm_inv(p);
            let raw = acklam_lower(p);
            assert!(
                (raw - exact).abs() <= 1.2e-9 * exact.abs().max(1e-300),
                "p = {p}: raw {raw}, refined {exact}"
            );
        }
    }

    // ---- moments, ratios ---------------------------------------------------------------------

    #[test]
    fn moments_of_a_hand_worked_sample() {
        // r = [1, 2, 3, 4, 10]: μ = 20/5 = 4, deviations −3, −2, −1, 0, 6.
        // Σd² = 9+4+1+0+36 = 50 → s = √(50/4) = √12.5, m₂ = 50/5 = 10.
        // Σd³ = −27−8−1+0+216 = 180 → m₃ = 36; γ₃ = 36/10^{1.5} = 1.1384199576606167.
        // Σd⁴ = 81+16+1+0+1296 = 1394 → m₄ = 278.8; γ₄ = 278.8/10² = 2.788.
        let r = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(mean(&r), Some(4.0));
        assert_close(std_dev(&r).unwrap(), 12.5f64.sqrt(), 1e-15);
        assert_close(skewness(&r).unwrap(), 1.138_419_957_660_616_7, 1e-14);
        assert_close(kurtosis(&r).unwrap(), 2.788, 1e-14);

        // Symmetric r = [−2, −1, 0, 1, 2]: γ₃ = 0; m₂ = 10/5 = 2, m₄ = 34/5 = 6.8, γ₄ = 6.8/4 = 1.7.
        let s = [-2.0, -1.0, 0.0, 1.0, 2.0];
        assert_close(skewness(&s).unwrap(), 0.0, 1e-15);
        assert_close(kurtosis(&s).unwrap(), 1.7, 1e-15);

        assert_eq!(mean(&[]), None);
        assert_eq!(std_dev(&[1.0]), None);
        assert_eq!(skewness(&[3.0, 3.0, 3.0]), None);
        assert_eq!(kurtosis(&[3.0]), None);
    }

    #[test]
    fn sharpe_and_annualization_by_hand() {
        // r = [0.01, 0.02, 0.03]: μ = 0.02, s = √((1e−4 + 0 + 1e−4)/2) = 0.01 → SR = 2.
        assert_close(sharpe_per_period(&[0.01, 0.02, 0.03]).unwrap(), 2.0, 1e-12);
        // 0.1·√365 = 1.91049731745428.
        assert_close(annualize(0.1, 365.0), 1.910_497_317_454_28, 1e-14);
        assert_eq!(sharpe_per_period(&[0.01, 0.01]), None);
        assert_eq!(sharpe_per_period(&[0.01]), None);
    }

    #[test]
    fn sortino_counts_every_period_in_the_downside_deviation() {
        // r = [0.02, −0.01, 0.03, −0.02]: μ = 0.02/4 = 0.005.
        // DD = √((0 + 1e−4 + 0 + 4e−4)/4) = √1.25e−4 = 0.011180339887498949.
        // Sortino = 0.005/0.0111803… · √365 = 0.4472135954999579 · 19.1049731745428
        //         = 8.54400374531753.
        let r = [0.02, -0.01, 0.03, -0.02];
        assert_close(sortino(&r, 365.0).unwrap(), 8.544_003_745_317_53, 1e-10);
        assert_eq!(sortino(&[0.01, 0.02], 365.0), None);
    }

    #[test]
    fn cagr_and_calmar_by_hand() {
        // 100 → 121 over 730 days = two years of 10 %: 1.21^{365/730} − 1 = 1.1 − 1 = 0.1.
        assert_close(cagr(100.0, 121.0, 730.0).unwrap(), 0.1, 1e-14);
        // 100 → 50 over 365 days: −50 %.
        assert_close(cagr(100.0, 50.0, 365.0).unwrap(), -0.5, 1e-14);
        assert_eq!(cagr(0.0, 1.0, 365.0), None);
        assert_eq!(cagr(1.0, 1.0, 0.0), None);
        // Calmar: 0.10 / 0.25 = 0.4.
        assert_close(calmar(0.1, 0.25).unwrap(), 0.4, 1e-15);
        assert_eq!(calmar(0.1, 0.0), None);
    }

    #[test]
    fn drawdown_duration_of_a_hand_made_curve() {
        // Peak 110 at t=1000; under water at 2000 and 3000; back above (111) at 4000 → 3000 ms.
        // New peak 111 at 4000; 100 at 5000, 103 at 6000, never recovered → 6000−4000 = 2000 ms.
        let t = [0, 1000, 2000, 3000, 4000, 5000, 6000];
        let e = [100.0, 110.0, 105.0, 108.0, 111.0, 100.0, 103.0];
        assert_eq!(drawdown_duration(&t, &e), Some(3000));

        // Unrecovered tail longest, irregular times: peak 10 at t=5; 9 at 7 recovers (10 ≥ 10)
        // at 9 → 4; then peak 10 at 9 stays under (8, 9.5) to t=100 → 91.
        let t = [0, 5, 7, 9, 50, 100];
        let e = [1.0, 10.0, 9.0, 10.0, 8.0, 9.5];
        assert_eq!(drawdown_duration(&t, &e), Some(91));

        // Monotone curve: never under water. A flat stretch at the peak is not a drawdown.
        assert_eq!(
            drawdown_duration(&[0, 1, 2, 3], &[1.0, 2.0, 2.0, 3.0]),
            Some(0)
        );
        assert_eq!(drawdown_duration(&[], &[]), Some(0));
        assert_eq!(drawdown_duration(&[0, 1], &[1.0]), None);
        assert_eq!(drawdown_duration(&[1, 0], &[1.0, 2.0]), None);
    }

    // ---- probabilistic and deflated Sharpe --------------------------------------------------

    #[test]
    fn probabilistic_sharpe_by_hand() {
        // SR = 0.1, SR* = 0, T = 100, γ₃ = 0, γ₄ = 3:
        // z = 0.1·√99 / √(1 − 0 + (3−1)/4·0.01) = 0.99498743710662 / √1.005
        //   = 0.99498743710662 / 1.0024968827881711 = 0.9925092578236596,
        // Φ(z) = 0.8395254171844497 (CPython 0.5*math.erfc(−z/√2)).
        let psr = probabilistic_sharpe(0.1, 0.0, 100, 0.0, 3.0).unwrap();
        assert_close(psr, 0.839_525_417_184_449_7, 1e-12);

        // At SR = SR* the probability is ½ whatever the moments.
        assert_close(
            probabilistic_sharpe(0.2, 0.2, 50, -1.0, 8.0).unwrap(),
            0.5,
            1e-15,
        );
        // Negative skew and fat tails widen the estimate's spread, so the PSR falls.
        assert!(probabilistic_sharpe(0.1, 0.0, 100, -2.0, 9.0).unwrap() < psr);

        assert_eq!(probabilistic_sharpe(0.1, 0.0, 1, 0.0, 3.0), None);
        // 1 − γ₃·SR + (γ₄−1)/4·SR² = 1 − 5·0.5 + 0 = −1.5 < 0.
        assert_eq!(probabilistic_sharpe(0.5, 0.0, 100, 5.0, 1.0), None);
    }

    #[test]
    fn expected_max_sharpe_of_the_deflated_sharpe_paper_example() {
        // Bailey & López de Prado (2014), numerical example: N = 100 trials, V = 0.5 (variance of
        // the annualized Sharpe ratios).
        // Φ⁻¹(1 − 1/100) = 2.3263478740408408, Φ⁻¹(1 − 1/(100e)) = 2.680210444966887,
        // (1−γ)·2.32634787 + γ·2.68021044 = 2.5306028932016846,
        // √0.5 · 2.5306028932 = 1.7894064662732079 annualized,
        // = 1.78940646627 / √250 = 0.11317200186513215 per day — the paper's SR₀ ≈ 0.1132.
        let sr0_year = expected_max_sharpe(100, 0.5).unwrap();
        assert_close(sr0_year, 1.789_406_466_273_207_9, 1e-12);
        let sr0_day = expected_max_sharpe(100, 0.5 / 250.0).unwrap();
        assert_close(sr0_day, 0.113_172_001_865_132_15, 1e-12);
        assert_close(sr0_day, 0.1132, 5e-5);

        assert_eq!(expected_max_sharpe(1, 0.5), Some(0.0));
        assert_eq!(expected_max_sharpe(0, 0.5), None);
        assert_eq!(expected_max_sharpe(10, -1.0), None);
        // More trials, higher bar.
        assert!(expected_max_sharpe(1000, 0.5).unwrap() > sr0_year);
    }

    #[test]
    fn deflated_sharpe_reproduces_the_paper_example() {
        // Bailey & López de Prado (2014): annualized SR 2.5 over five years of daily returns
        // (T = 1250, 250 per year), γ₃ = −3, γ₄ = 10, N = 100, V = 0.5 annualized.
        // Per day: SR = 2.5/√250 = 0.15811388300841897, V = 0.5/250, SR₀ = 0.11317200186513215.
        // √(1 + 3·0.158113883 + 9/4·0.025) = √1.5305917…  = 1.2371708245126285,
        // z = (0.158113883 − 0.113172002)·√1249 / 1.23717082 = 1.2838160365336542,
        // DSR = Φ(1.28381604) = 0.9003968344493903 ≈ the paper's 0.9004.
        let sr = 2.5 / 250f64.sqrt();
        let dsr = deflated_sharpe(sr, 1250, -3.0, 10.0, 100, 0.5 / 250.0).unwrap();
        assert_close(dsr, 0.9004, 5e-5);
        assert_close(dsr, 0.900_396_834_449_390_3, 1e-10);

        // One trial: no deflation, DSR = PSR(0).
        assert_eq!(
            deflated_sharpe(sr, 1250, -3.0, 10.0, 1, 0.5 / 250.0),
            probabilistic_sharpe(sr, 0.0, 1250, -3.0, 10.0)
        );
    }

    // ---- probability of backtest overfitting ------------------------------------------------

    /// Marsaglia's xorshift64 (2003, "Xorshift RNGs", *J. Stat. Software* 8(14)), for
    /// reproducible noise.
    struct XorShift(u64);

    impl XorShift {
        /// Spreads small seeds over the state (xorshift's first outputs from a state like 1 are
        /// tiny) and never lets it be 0, then discards a few outputs.
        fn new(seed: u64) -> Self {
            let mut rng = Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            (0..8).for_each(|_| {
                rng.next_u64();
            });
            rng
        }

        fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform on (0, 1).
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        /// Standard normal by Box–Muller.
        fn gauss(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    fn noise_matrix(seed: u64, t: usize, n: usize) -> Vec<Vec<f64>> {
        let mut rng = XorShift::new(seed);
        (0..t)
            .map(|_| (0..n).map(|_| 0.01 * rng.gauss()).collect())
            .collect()
    }

    #[test]
    fn pbo_of_pure_noise_is_one_half_on_average() {
        // With no skill the in-sample winner's out-of-sample rank is uniform on 1..=16, and
        // ranks 1..=8 give λ ≤ 0: E[PBO] = 8/16 = ½. T = 800, N = 16, S = 8 → C(8, 4) = 70 splits.
        //
        // One matrix is not enough to test that: its 70 splits share the same rows, and over 400
        // seeds the PBO of a single such matrix had mean 0.4997 but standard deviation 0.22 (only
        // 60 % of them within ½ ± 0.2). So average 64 independent matrices: the mean's standard
        // deviation is then ≈ 0.22/8 = 0.028, and ½ ± 0.1 is a 3.6σ band.
        let runs: Vec<Pbo> = (1..=64)
            .map(|seed| pbo_cscv(&noise_matrix(seed, 800, 16), 8).unwrap())
            .collect();
        assert!(
            runs.iter()
                .all(|p| p.combinations == 70 && p.logits.len() == 70)
        );
        let avg = runs.iter().map(|p| p.pbo).sum::<f64>() / runs.len() as f64;
        assert!(
            (avg - 0.5).abs() <= 0.1,
            "mean PBO over 64 noise matrices: {avg}"
        );
        // The pooled logits are centred too: λ takes the 16 values ln(r/(17 − r)), symmetric
        // about 0, with equal chance.
        let all: Vec<f64> = runs.iter().flat_map(|p| p.logits.iter().copied()).collect();
        let mean_logit = all.iter().sum::<f64>() / all.len() as f64;
        assert!(mean_logit.abs() <= 0.3, "mean logit {mean_logit}");
    }

    #[test]
    fn pbo_is_zero_when_one_trial_has_an_edge_in_every_block() {
        // Trial 5 earns +1 % a period on top of the noise (per-period SR ≈ 1, against ≈ ±0.05
        // for the others over 400 rows): it wins in sample and is best out of sample in every
        // split, so ω = 16/17 and λ = ln 16 each time.
        let mut m = noise_matrix(42, 800, 16);
        m.iter_mut().for_each(|row| row[5] += 0.01);
        let p = pbo_cscv(&m, 8).unwrap();
        assert_eq!(p.pbo, 0.0);
        assert!(p.logits.iter().all(|&l| close(l, 16f64.ln(), 1e-12)));

        // A riskless constant return (zero deviation, Sharpe +∞) wins the same way.
        let mut m = noise_matrix(7, 800, 16);
        m.iter_mut().for_each(|row| row[0] = 0.001);
        assert_eq!(pbo_cscv(&m, 8).unwrap().pbo, 0.0);
    }

    #[test]
    fn pbo_of_a_hand_built_two_trial_case() {
        // T = 4, N = 2, S = 2: blocks A = rows 0–1, B = rows 2–3; splits (IS, OOS) = (A, B), (B, A).
        // Sharpe (sample s): [1, 3] → μ 2, s √2 → 1.4142; [1, 2] → μ 1.5, s √0.5 → 2.1213;
        //                    [1, 5] → μ 3, s √8 → 1.0607.
        // Trial 0: A = [1, 3] (1.4142), B = [1, 2] (2.1213).
        // Trial 1: A = [1, 2] (2.1213), B = [1, 5] (1.0607).
        // (A, B): IS best trial 1; OOS 1.0607 < 2.1213 → rank 1, ω = 1/3, λ = ln(½) = −0.6931.
        // (B, A): IS best trial 0; OOS 1.4142 < 2.1213 → rank 1, ω = 1/3, λ = −0.6931.
        // PBO = 2/2 = 1: whichever half is used to choose, the choice loses in the other.
        let m = vec![
            vec![1.0, 1.0],
            vec![3.0, 2.0],
            vec![1.0, 1.0],
            vec![2.0, 5.0],
        ];
        let p = pbo_cscv(&m, 2).unwrap();
        assert_eq!(p.combinations, 2);
        assert_eq!(p.pbo, 1.0);
        for l in &p.logits {
            assert_close(*l, 0.5f64.ln(), 1e-15);
        }

        // Swap trial 1's halves: A = [1, 5] (1.0607), B = [1, 2] (2.1213). Now
        // (A, B): IS best trial 0 (1.4142 > 1.0607); OOS 2.1213 vs 2.1213 tie → rank 1.5,
        //         ω = 1.5/3 = ½, λ = 0 → counts as overfit (λ ≤ 0).
        // (B, A): tie in sample → trial 0 (lowest index); OOS 1.4142 > 1.0607 → rank 2,
        //         ω = 2/3, λ = ln 2 = 0.6931.
        // PBO = 1/2.
        let m = vec![
            vec![1.0, 1.0],
            vec![3.0, 5.0],
            vec![1.0, 1.0],
            vec![2.0, 2.0],
        ];
        let p = pbo_cscv(&m, 2).unwrap();
        assert_eq!(p.pbo, 0.5);
        assert_close(p.logits[0], 0.0, 1e-15);
        assert_close(p.logits[1], 2f64.ln(), 1e-15);

        // Trial 0 better in both halves: λ = ln 2 twice, PBO = 0.
        let m = vec![
            vec![1.0, 1.0],
            vec![2.0, 5.0],
            vec![1.0, 1.0],
            vec![2.0, 3.0],
        ];
        assert_eq!(pbo_cscv(&m, 2).unwrap().pbo, 0.0);
    }

    #[test]
    fn pbo_rejects_shapes_it_cannot_split() {
        let m = noise_matrix(3, 40, 4);
        assert!(pbo_cscv(&m, 3).is_none(), "odd S");
        assert!(pbo_cscv(&m, 0).is_none(), "S = 0");
        assert!(pbo_cscv(&m, 22).is_none(), "T < 2·S");
        assert!(pbo_cscv(&noise_matrix(3, 40, 1), 4).is_none(), "one trial");
        assert!(pbo_cscv(&[], 2).is_none(), "no rows");
        let mut ragged = m.clone();
        ragged[3].pop();
        assert!(pbo_cscv(&ragged, 4).is_none(), "ragged rows");
        let mut nan = m.clone();
        nan[0][0] = f64::NAN;
        assert!(pbo_cscv(&nan, 4).is_none(), "NaN");
        // T = 41 with S = 4 splits 10/10/10/11 rows and still gives C(4, 2) = 6 splits.
        assert_eq!(
            pbo_cscv(&noise_matrix(3, 41, 4), 4).unwrap().combinations,
            6
        );
    }
}
