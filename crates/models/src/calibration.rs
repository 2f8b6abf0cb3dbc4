//! Isotonic calibration: the non-decreasing step function of a score that best fits observed
//! 0/1 outcomes (or any targets) in least squares, found by the pool-adjacent-violators
//! algorithm (Ayer et al., 1955; Zadrozny & Elkan, 2002, for classifier scores). Fitted on a
//! validation slice that is neither the training nor the test data, it turns a booster's raw
//! score into a probability that means what it says: of the rows scored near `s`, a share
//! `predict(s)` had the outcome.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// A fitted non-decreasing step function: `predict(x)` is the value of the last block whose
/// lowest score is at or below `x` (the first block's value below it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// Lowest score of each block, increasing.
    pub lower: Vec<f64>,
    /// Fitted value of each block, increasing.
    pub value: Vec<f64>,
}

impl Isotonic {
    /// Fits the least-squares non-decreasing function of `scores` to `targets` (equal weights).
    ///
    /// # Errors
    /// [`ModelError::Data`] when the slices differ in length, are empty, or hold a non-finite
    /// value.
    pub fn fit(scores: &[f64], targets: &[f64]) -> Result<Self, ModelError> {
        if scores.len() != targets.len() || scores.is_empty() {
            return Err(ModelError::Data(format!(
                "isotonic fit on {} scores and {} targets",
                scores.len(),
                targets.len()
            )));
        }
        if scores.iter().chain(targets).any(|v| !v.is_finite()) {
            return Err(ModelError::Data(
                "isotonic fit on a non-finite value".to_string(),
            ));
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        // Blocks of (lowest score, sum of targets, count); equal scores start in one block so
        // the function is a function of the score.
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for &i in &order {
            match blocks.last_mut() {
                Some(last) if last.0 == scores[i] => {
                    last.1 += targets[i];
                    last.2 += 1.0;
                }
                _ => blocks.push((scores[i], targets[i], 1.0)),
            }
            // Pool while the last block's mean is not above the one before it (equal means
            // pool too: one block per distinct value).
            while blocks.len() >= 2 {
                let n = blocks.len();
                let (b, a) = (blocks[n - 1], blocks[n - 2]);
                if a.1 / a.2 < b.1 / b.2 {
                    break;
                }
                blocks[n - 2] = (a.0, a.1 + b.1, a.2 + b.2);
                blocks.pop();
            }
        }
        Ok(Isotonic {
            lower: blocks.iter().map(|b| b.0).collect(),
            value: blocks.iter().map(|b| b.1 / b.2).collect(),
        })
    }

    /// The fitted value at score `x`.
    pub fn predict(&self, x: f64) -> f64 {
        let k = self.lower.partition_point(|&l| l <= x);
        self.value[k.saturating_sub(1).min(self.value.len() - 1)]
    }

    /// Checks a loaded calibration: as many values as blocks, at least one, increasing lower
    /// bounds, non-decreasing finite values.
    pub fn validate(&self) -> Result<(), ModelError> {
        let ok = !self.lower.is_empty()
            && self.lower.len() == self.value.len()
            && self.lower.iter().chain(&self.value).all(|v| v.is_finite())
            && self.lower.windows(2).all(|w| w[0] < w[1])
            && self.value.windows(2).all(|w| w[0] <= w[1]);
        if ok {
            Ok(())
        } else {
            Err(ModelError::Format(
                "isotonic calibration is not a non-decreasing step function".to_string(),
            ))
        }
    }
}

/// One bin of a reliability curve: rows whose predicted probability fell in the bin, their mean
/// prediction and the share that had the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub predicted: f64,
    pub observed: f64,
    pub rows: usize,
}

/// The reliability curve of `predicted` probabilities against 0/1 `outcomes` in `bins` equal-width
/// bins over [0, 1] (empty bins left out). A calibrated model lies on the diagonal.
pub fn reliability(predicted: &[f64], outcomes: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    let mut acc = vec![(0.0f64, 0usize, 0usize); bins];
    for (&p, &o) in predicted.iter().zip(outcomes) {
        let k = ((p.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        acc[k].0 += p;
        acc[k].1 += usize::from(o);
        acc[k].2 += 1;
    }
    acc.into_iter()
        .filter(|a| a.2 > 0)
        .map(|(sum, hits, n)| ReliabilityBin {
            predicted: sum / n as f64,
            observed: hits as f64 / n as f64,
            rows: n,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_adjacent_violators_matches_the_hand_computed_fit() {
        // Targets by score: 1, 3, 2, 4, 3, 5. PAV pools (3, 2) → 2.5 and (4, 3) → 3.5:
        // fit = 1, 2.5, 2.5, 3.5, 3.5, 5 — the least-squares non-decreasing fit.
        let scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let targets = [1.0, 3.0, 2.0, 4.0, 3.0, 5.0];
        let iso = Isotonic::fit(&scores, &targets).expect("fit");
        assert_eq!(iso.lower, vec![0.1, 0.2, 0.4, 0.6]);
        assert_eq!(iso.value, vec![1.0, 2.5, 3.5, 5.0]);
        assert_eq!(iso.predict(0.0), 1.0, "below the first block");
        assert_eq!(iso.predict(0.35), 2.5);
        assert_eq!(iso.predict(0.4), 3.5);
        assert_eq!(iso.predict(9.0), 5.0);
        iso.validate().expect("valid");
    }

    #[test]
    fn a_violation_that_spreads_backwards_pools_every_block_it_reaches() {
        // 0, 0, 1, 1 then a 0 at the highest score: the last three pool to 2/3, then stay
        // above the first two zeros.
        let iso =
            Isotonic::fit(&[1.0, 2.0, 3.0, 4.0, 5.0], &[0.0, 0.0, 1.0, 1.0, 0.0]).expect("fit");
        assert_eq!(iso.lower, vec![1.0, 3.0]);
        assert!((iso.value[1] - 2.0 / 3.0).abs() < 1e-12);
        // Ties in the score are one block, whatever the order they come in.
        let iso = Isotonic::fit(&[2.0, 1.0, 2.0], &[1.0, 0.0, 0.0]).expect("fit");
        assert_eq!(iso.value, vec![0.0, 0.5]);
    }

    #[test]
    fn calibration_recovers_the_probability_behind_noisy_outcomes() {
        // Outcome probability 0.1 below score 0, 0.4 at or above it: deterministic "noise" by
        // a counter, so the shares are exact.
        let mut scores = Vec::new();
        let mut hits = Vec::new();
        for i in 0..1000 {
            let s = (i as f64 - 500.0) / 100.0;
            let p = if s < 0.0 { 0.1 } else { 0.4 };
            scores.push(s);
            hits.push(if ((i % 10) as f64) < p * 10.0 {
                1.0
            } else {
                0.0
            });
        }
        let iso = Isotonic::fit(&scores, &hits).expect("fit");
        assert!(
            (iso.predict(-3.0) - 0.1).abs() < 0.02,
            "{}",
            iso.predict(-3.0)
        );
        assert!(
            (iso.predict(3.0) - 0.4).abs() < 0.02,
            "{}",
            iso.predict(3.0)
        );
        let curve = reliability(
            &scores.iter().map(|&s| iso.predict(s)).collect::<Vec<_>>(),
            &hits.iter().map(|&h| h > 0.5).collect::<Vec<_>>(),
            10,
        );
        for b in &curve {
            assert!((b.predicted - b.observed).abs() < 0.05, "{b:?}");
        }
        assert_eq!(curve.iter().map(|b| b.rows).sum::<usize>(), 1000);
    }

    #[test]
    fn bad_input_is_refused_not_fitted() {
        assert!(Isotonic::fit(&[], &[]).is_err());
        assert!(Isotonic::fit(&[1.0], &[1.0, 2.0]).is_err());
        assert!(Isotonic::fit(&[f64::NAN], &[1.0]).is_err());
        let bad = Isotonic {
            lower: vec![1.0, 0.5],
            value: vec![0.1, 0.2],
        };
        assert!(bad.validate().is_err());
    }
}
