//! Training the temporal model on a [`Dataset`]: the rows of each symbol that follow one
//! another candle after candle form segments; the network runs over chunks of a segment (each
//! position reading its own window) and is fitted by Adam on the binary cross-entropy of the
//! two targets at the fit rows; the epoch with the lowest loss on the calibration rows is
//! kept; the expected-value rule is then fitted on the calibration rows ([`fit_rule`]).
//! Nothing is fitted on test rows.

// Index loops over weights, channels and rows read as the formulas they implement.
#![allow(clippy::needless_range_loop)]

use qt_events::SignalAction;
use qt_features::N_FEATURES;
use serde::{Deserialize, Serialize};

use super::net::{Adam, Net, Rng, Trace, bce};
use super::{Normalizer, TemporalModel, TemporalParams};
use crate::dataset::Dataset;
use crate::ev::{EvReport, EvRow, EvSettings, fit_rule};
use crate::metrics::{Evaluation, evaluate};
use crate::{ModelError, Signal};

/// Mean loss (binary cross-entropy per target) after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochLoss {
    pub epoch: usize,
    /// On the rows the network was fitted on.
    pub fit: f64,
    /// On the calibration rows (the epoch with the lowest one is kept).
    pub validation: f64,
}

/// A trained temporal model and what training saw.
#[derive(Debug, Clone)]
pub(crate) struct Fitted {
    pub model: TemporalModel,
    pub ev: EvReport,
    /// (P(long wins), P(short wins)) of every dataset row with a full window of rows before
    /// it in its segment, as the live model computes them.
    pub scores: Vec<Option<(f64, f64)>>,
    pub epochs: Vec<EpochLoss>,
}

/// A run of output positions `[out_start, out_end)` (dataset rows) and the rows its windows
/// read, from `out_start − (window − 1)`.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    in_start: usize,
    out_start: usize,
    out_end: usize,
}

/// Chunks of at most `per` output positions over every segment: rows of one symbol whose
/// open times follow one another by one interval.
fn chunks(ds: &Dataset, window: usize, per: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=ds.len() {
        let breaks = i == ds.len()
            || ds.symbol_of[i] != ds.symbol_of[i - 1]
            || ds.candles[i].open_time != ds.candles[i - 1].open_time + ds.interval_ms;
        if !breaks {
            continue;
        }
        let mut p = start + window - 1;
        while p < i {
            let end = (p + per).min(i);
            out.push(Chunk {
                in_start: p + 1 - window,
                out_start: p,
                out_end: end,
            });
            p = end;
        }
        start = i;
    }
    out
}

fn targets(label: SignalAction) -> [f32; 2] {
    [
        f32::from(u8::from(label == SignalAction::Buy)),
        f32::from(u8::from(label == SignalAction::Sell)),
    ]
}

/// Loss sum, target count and gradient of one chunk at the rows `mask` selects (no
/// gradient when `with_grad` is false).
fn chunk_gradient(
    net: &Net,
    x: &[f32],
    ds: &Dataset,
    mask: &[bool],
    c: &Chunk,
    with_grad: bool,
    trace: &mut Trace,
) -> (f64, usize, Vec<f32>) {
    let len = c.out_end - c.in_start;
    let xs = &x[c.in_start * N_FEATURES..c.out_end * N_FEATURES];
    net.forward(xs, len, trace);
    let mut d = vec![0.0f32; len * 2];
    let (mut loss, mut count) = (0.0f64, 0usize);
    for row in c.out_start..c.out_end {
        if !mask[row] {
            continue;
        }
        let t = row - c.in_start;
        for (k, y) in targets(ds.labels[row]).into_iter().enumerate() {
            let (l, g) = bce(trace.logits[t * 2 + k], y);
            loss += f64::from(l);
            d[t * 2 + k] = g;
        }
        count += 2;
    }
    let mut grad = Vec::new();
    if with_grad && count > 0 {
        grad = vec![0.0f32; net.parameters()];
        net.backward(xs, trace, &d, &mut grad);
    }
    (loss, count, grad)
}

/// Loss sum, target count and gradient sum of `chunks`, computed on up to `threads` threads
/// and summed chunk by chunk in order, so the result does not depend on the thread count.
fn gradients(
    net: &Net,
    x: &[f32],
    ds: &Dataset,
    mask: &[bool],
    chunks: &[Chunk],
    with_grad: bool,
    threads: usize,
) -> (f64, usize, Vec<f32>) {
    let threads = threads.clamp(1, chunks.len().max(1));
    let run = |part: &[Chunk]| {
        let mut trace = Trace::default();
        part.iter()
            .map(|c| chunk_gradient(net, x, ds, mask, c, with_grad, &mut trace))
            .collect::<Vec<_>>()
    };
    let per_chunk: Vec<(f64, usize, Vec<f32>)> = if threads == 1 {
        run(chunks)
    } else {
        let per = chunks.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .chunks(per)
                .map(|p| s.spawn(move || run(p)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    let mut total = (
        0.0,
        0,
        vec![0.0f32; if with_grad { net.parameters() } else { 0 }],
    );
    for (l, n, g) in per_chunk {
        total.0 += l;
        total.1 += n;
        for (t, v) in total.2.iter_mut().zip(g) {
            *t += v;
        }
    }
    total
}

fn row_mask(len: usize, rows: &[usize]) -> Vec<bool> {
    let mut m = vec![false; len];
    for &r in rows {
        m[r] = true;
    }
    m
}

/// Scores of every row with a full window, computed chunk by chunk.
pub(crate) fn score_rows(net: &Net, norm: &Normalizer, ds: &Dataset) -> Vec<Option<(f64, f64)>> {
    let x = normalized(norm, ds);
    let mut scores = vec![None; ds.len()];
    let mut trace = Trace::default();
    for c in chunks(ds, net.window(), 512) {
        let len = c.out_end - c.in_start;
        net.forward(
            &x[c.in_start * N_FEATURES..c.out_end * N_FEATURES],
            len,
            &mut trace,
        );
        for row in c.out_start..c.out_end {
            let t = row - c.in_start;
            scores[row] = Some((
                super::sigmoid(trace.logits[t * 2]),
                super::sigmoid(trace.logits[t * 2 + 1]),
            ));
        }
    }
    scores
}

fn normalized(norm: &Normalizer, ds: &Dataset) -> Vec<f32> {
    let mut x = vec![0.0f32; ds.len() * N_FEATURES];
    for (i, f) in ds.features.iter().enumerate() {
        norm.apply(f, &mut x[i * N_FEATURES..(i + 1) * N_FEATURES]);
    }
    x
}

/// Fits the network on `fit_rows`, keeps the epoch with the lowest loss on
/// `calibration_rows`, and fits the expected-value rule there.
///
/// # Errors
/// [`ModelError::Params`] for invalid settings; [`ModelError::Data`] when no fit or no
/// calibration row has a full window.
pub(crate) fn fit(
    ds: &Dataset,
    fit_rows: &[usize],
    calibration_rows: &[usize],
    params: &TemporalParams,
    ev: &EvSettings,
    threads: usize,
    version: &str,
) -> Result<Fitted, ModelError> {
    params.validate()?;
    let window = params.window();
    let norm = Normalizer::fit(fit_rows.iter().map(|&i| &ds.features[i]));
    let x = normalized(&norm, ds);
    let fit_mask = row_mask(ds.len(), fit_rows);
    let cal_mask = row_mask(ds.len(), calibration_rows);
    let all = chunks(ds, window, params.chunk);
    let has = |m: &[bool], c: &Chunk| m[c.out_start..c.out_end].iter().any(|&b| b);
    let train_chunks: Vec<Chunk> = all.iter().copied().filter(|c| has(&fit_mask, c)).collect();
    let cal_chunks: Vec<Chunk> = all.iter().copied().filter(|c| has(&cal_mask, c)).collect();
    if train_chunks.is_empty() || cal_chunks.is_empty() {
        return Err(ModelError::Data(format!(
            "no run of {window} consecutive candles among the fit or the calibration rows"
        )));
    }
    let mut net = Net::new(N_FEATURES, params.channels, &params.dilations, params.seed);
    let mut weights = net.flat();
    let mut adam = Adam::new(weights.len(), params.learning_rate, params.weight_decay);
    let mut rng = Rng::new(params.seed ^ 0x5EED);
    let mut order: Vec<usize> = (0..train_chunks.len()).collect();
    let mut epochs = Vec::with_capacity(params.epochs);
    let mut best: Option<(f64, Net)> = None;
    let mut batch = Vec::with_capacity(params.batch);
    for epoch in 1..=params.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let (mut fit_loss, mut fit_n) = (0.0, 0usize);
        for idx in order.chunks(params.batch) {
            batch.clear();
            batch.extend(idx.iter().map(|&k| train_chunks[k]));
            let (l, n, mut g) = gradients(&net, &x, ds, &fit_mask, &batch, true, threads);
            if n == 0 {
                continue;
            }
            fit_loss += l;
            fit_n += n;
            let scale = 1.0 / n as f32;
            g.iter_mut().for_each(|v| *v *= scale);
            adam.step(&mut weights, &g);
            net.set_flat(&weights);
        }
        let (vl, vn, _) = gradients(&net, &x, ds, &cal_mask, &cal_chunks, false, threads);
        let validation = vl / vn.max(1) as f64;
        epochs.push(EpochLoss {
            epoch,
            fit: fit_loss / fit_n.max(1) as f64,
            validation,
        });
        if best.as_ref().is_none_or(|(b, _)| validation < *b) {
            best = Some((validation, net.clone()));
        }
    }
    let net = best.map_or(net, |(_, n)| n);
    let scores = score_rows(&net, &norm, ds);
    let rows: Vec<EvRow> = calibration_rows
        .iter()
        .filter_map(|&i| Some(EvRow::of(ds, i, scores[i]?)))
        .collect();
    let (rule, report) = fit_rule(rows, &ds.labeling.costs, ds.interval_ms, ev)?;
    let model = TemporalModel::new(version, params.clone(), net, norm, rule)?;
    Ok(Fitted {
        model,
        ev: report,
        scores,
        epochs,
    })
}

impl Fitted {
    /// The model's decisions and probabilities on `rows` (those with a full window), as it
    /// decides live.
    pub(crate) fn evaluate(&self, ds: &Dataset, rows: &[usize]) -> Evaluation {
        let scored: Vec<(usize, (f64, f64))> = rows
            .iter()
            .filter_map(|&i| Some((i, self.scores[i]?)))
            .collect();
        let probs: Vec<(f64, f64)> = scored.iter().map(|&(_, p)| p).collect();
        let signals: Vec<Signal> = probs
            .iter()
            .map(|&(b, s)| self.model.decide(b, s))
            .collect();
        let labels: Vec<SignalAction> = scored.iter().map(|&(i, _)| ds.labels[i]).collect();
        evaluate(&signals, &labels, Some(&probs))
    }
}
