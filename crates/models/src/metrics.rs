//! Evaluation metrics of a classifier of BUY / SELL / HOLD.

use qt_events::SignalAction;
use serde::{Deserialize, Serialize};

use crate::{Signal, SignalMix};

/// Precision per predicted class (None when the class was never predicted).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PerClass {
    pub buy: Option<f64>,
    pub sell: Option<f64>,
    pub hold: Option<f64>,
}

/// Metrics on one set of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    /// Share of rows whose action equals the label.
    pub accuracy: f64,
    /// Of the rows predicted as each class, the share labelled so.
    pub precision: PerClass,
    /// Of the rows labelled as each class, the share predicted so.
    pub recall: PerClass,
    /// ROC AUC of P(buy) for "label is BUY" and of P(sell) for "label is SELL" (probabilistic
    /// models only).
    pub auc_buy: Option<f64>,
    pub auc_sell: Option<f64>,
    /// Multi-class log loss with p_hold = (1 - p_buy)(1 - p_sell), normalized.
    pub log_loss: Option<f64>,
    /// What the model said.
    pub signal_mix: SignalMix,
    /// What the labels say.
    pub label_mix: SignalMix,
}

fn share(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// ROC AUC by ranks (ties get their mean rank). None when one class is absent.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n = scores.len();
    let pos = positive.iter().filter(|&&p| p).count();
    let neg = n - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if positive[k] {
                rank_sum_pos += mean_rank;
            }
        }
        i = j + 1;
    }
    Some((rank_sum_pos - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64)
}

/// Evaluates decisions against labels; `probabilities` (p_buy, p_sell) per row when the model
/// has them.
pub fn evaluate(
    signals: &[Signal],
    labels: &[SignalAction],
    probabilities: Option<&[(f64, f64)]>,
) -> Evaluation {
    use SignalAction::*;
    let n = signals.len().min(labels.len());
    let mut hit = [0usize; 3];
    let mut predicted = [0usize; 3];
    let mut actual = [0usize; 3];
    let k = |a: SignalAction| match a {
        Buy => 0,
        Sell => 1,
        Hold => 2,
    };
    for (s, l) in signals.iter().zip(labels).take(n) {
        predicted[k(s.action)] += 1;
        actual[k(*l)] += 1;
        if s.action == *l {
            hit[k(*l)] += 1;
        }
    }
    let (auc_buy, auc_sell, log_loss) = match probabilities {
        Some(p) if p.len() >= n && n > 0 => {
            let pb: Vec<f64> = p[..n].iter().map(|x| x.0).collect();
            let ps: Vec<f64> = p[..n].iter().map(|x| x.1).collect();
            let is = |a: SignalAction| labels[..n].iter().map(|l| *l == a).collect::<Vec<_>>();
            let ll = p[..n]
                .iter()
                .zip(&labels[..n])
                .map(|(&(b, s), l)| {
                    let h = (1.0 - b) * (1.0 - s);
                    let total = b + s + h;
                    let q = match l {
                        Buy => b,
                        Sell => s,
                        Hold => h,
                    } / total;
                    -q.clamp(1e-15, 1.0).ln()
                })
                .sum::<f64>()
                / n as f64;
            (auc(&pb, &is(Buy)), auc(&ps, &is(Sell)), Some(ll))
        }
        _ => (None, None, None),
    };
    Evaluation {
        rows: n,
        accuracy: share(hit.iter().sum(), n).unwrap_or(0.0),
        precision: PerClass {
            buy: share(hit[0], predicted[0]),
            sell: share(hit[1], predicted[1]),
            hold: share(hit[2], predicted[2]),
        },
        recall: PerClass {
            buy: share(hit[0], actual[0]),
            sell: share(hit[1], actual[1]),
            hold: share(hit[2], actual[2]),
        },
        auc_buy,
        auc_sell,
        log_loss,
        signal_mix: SignalMix::of(signals[..n].iter().map(|s| s.action)),
        label_mix: SignalMix::of(labels[..n].iter().copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_a_perfect_ranking_is_one_and_of_a_reversed_one_is_zero() {
        let s = [0.1, 0.2, 0.8, 0.9];
        assert_eq!(auc(&s, &[false, false, true, true]), Some(1.0));
        assert_eq!(auc(&s, &[true, true, false, false]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(auc(&s, &[true; 4]), None);
    }

    #[test]
    fn accuracy_precision_and_mix_count_what_they_say() {
        use SignalAction::*;
        let sig = |a| Signal::new(a, 0.5);
        let signals = [sig(Buy), sig(Buy), sig(Sell), sig(Hold)];
        let labels = [Buy, Hold, Sell, Sell];
        let e = evaluate(&signals, &labels, None);
        assert_eq!(e.accuracy, 0.5);
        assert_eq!(e.precision.buy, Some(0.5));
        assert_eq!(e.precision.sell, Some(1.0));
        assert_eq!(e.precision.hold, Some(0.0));
        assert_eq!(e.recall.sell, Some(0.5));
        assert_eq!(e.signal_mix.buy, 0.5);
        assert_eq!(e.label_mix.sell, 0.5);
        assert!(e.log_loss.is_none());
    }
}
