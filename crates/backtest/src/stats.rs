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
mod tests;
