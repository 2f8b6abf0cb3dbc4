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
