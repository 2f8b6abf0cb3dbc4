//! The temporal model's network, in plain Rust (`f32`, no framework): a causal temporal
//! convolution network (TCN) over a sequence of normalized feature vectors.
//!
//! ```text
//! e₀[t]   = relu(W x[t] + b)                                  per-step embedding, C channels
//! eₗ₊₁[t] = eₗ[t] + relu(Aₗ eₗ[t] + Bₗ eₗ[t − dₗ] + cₗ)          dilated causal conv, residual
//! y[t]    = V e_L[t] + v                                       two logits: long wins, short wins
//! ```
//!
//! With dilations 1, 2, 4, 8, 16 the output at `t` reads exactly the inputs `t − 31 ..= t`
//! (the window, `1 + Σ dₗ` steps). Training runs the stack over a whole chunk of consecutive
//! steps at once and trains every position whose window lies inside the chunk; inference runs
//! it over one window and reads its last position. Both compute every position with the same
//! code, so a position's logits do not depend on which of the two computed them.
//!
//! Backpropagation is written out by hand ([`Net::backward`]) and checked against finite
//! differences in the tests.

// Index loops over weights, channels and rows read as the formulas they implement.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// One dilated causal convolution layer (kernel 2) with a residual connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvLayer {
    pub dilation: usize,
    /// C × C, row-major (`a[o * C + i]`): weights on the current step.
    pub a: Vec<f32>,
    /// C × C: weights on the step `dilation` back.
    pub b: Vec<f32>,
    /// C biases.
    pub bias: Vec<f32>,
}

/// The network's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Net {
    pub inputs: usize,
    pub channels: usize,
    /// C × inputs, row-major.
    pub w_in: Vec<f32>,
    pub b_in: Vec<f32>,
    pub layers: Vec<ConvLayer>,
    /// 2 × C.
    pub w_out: Vec<f32>,
    pub b_out: Vec<f32>,
}

/// What a forward pass over `len` steps keeps for the backward pass: each layer's output
/// (`acts[0]` the embedding, `acts[L]` the last) and which pre-activations were positive.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    len: usize,
    acts: Vec<Vec<f32>>,
    masks: Vec<Vec<bool>>,
    /// `len × 2` logits.
    pub logits: Vec<f32>,
}

/// A small deterministic generator (splitmix64) for initialization and shuffling.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    fn uniform(&mut self, scale: f32) -> f32 {
        ((self.unit() * 2.0 - 1.0) as f32) * scale
    }
}

impl Net {
    /// A network with He-uniform initial weights from `seed`; the residual branches start
    /// small so the initial network is close to a linear model of the embedding.
    pub fn new(inputs: usize, channels: usize, dilations: &[usize], seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut init = |n: usize, fan_in: usize, gain: f32| -> Vec<f32> {
            let s = gain * (6.0 / fan_in as f32).sqrt();
            (0..n).map(|_| rng.uniform(s)).collect()
        };
        let w_in = init(channels * inputs, inputs, 1.0);
        let layers = dilations
            .iter()
            .map(|&d| ConvLayer {
                dilation: d,
                a: init(channels * channels, 2 * channels, 0.5),
                b: init(channels * channels, 2 * channels, 0.5),
                bias: vec![0.0; channels],
            })
            .collect();
        let w_out = init(2 * channels, channels, 0.1);
        Net {
            inputs,
            channels,
            w_in,
            b_in: vec![0.0; channels],
            layers,
            w_out,
            b_out: vec![0.0; 2],
        }
    }

    /// Steps one output reads: `1 + Σ dilations`.
    pub fn window(&self) -> usize {
        1 + self.layers.iter().map(|l| l.dilation).sum::<usize>()
    }

    /// Number of weights.
    pub fn parameters(&self) -> usize {
        self.flat_len()
    }

    /// Checks the shapes (an artifact could hold anything).
    pub fn validate(&self) -> Result<(), ModelError> {
        let c = self.channels;
        let ok = c > 0
            && self.inputs > 0
            && self.w_in.len() == c * self.inputs
            && self.b_in.len() == c
            && self.w_out.len() == 2 * c
            && self.b_out.len() == 2
            && self.layers.iter().all(|l| {
                l.dilation > 0 && l.a.len() == c * c && l.b.len() == c * c && l.bias.len() == c
            })
            && self.flat().iter().all(|w| w.is_finite());
        if ok {
            Ok(())
        } else {
            Err(ModelError::Format(
                "temporal network weights have the wrong shape or a non-finite value".into(),
            ))
        }
    }

    /// Forward pass over `len` consecutive steps (`x`: `len × inputs`, row-major); a step
    /// before the first reads as zeros (only positions `>= window() - 1` are meaningful).
    pub fn forward(&self, x: &[f32], len: usize, trace: &mut Trace) {
        let (c, n_in) = (self.channels, self.inputs);
        trace.len = len;
        trace.acts.resize_with(self.layers.len() + 1, Vec::new);
        trace.masks.resize_with(self.layers.len() + 1, Vec::new);
        {
            let (e, m) = (&mut trace.acts[0], &mut trace.masks[0]);
            e.clear();
            e.resize(len * c, 0.0);
            m.clear();
            m.resize(len * c, false);
            for t in 0..len {
                let xt = &x[t * n_in..(t + 1) * n_in];
                for o in 0..c {
                    let z = self.b_in[o] + dot(&self.w_in[o * n_in..(o + 1) * n_in], xt);
                    m[t * c + o] = z > 0.0;
                    e[t * c + o] = z.max(0.0);
                }
            }
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, after) = trace.acts.split_at_mut(l + 1);
            let (h, out) = (&before[l], &mut after[0]);
            let m = &mut trace.masks[l + 1];
            out.clear();
            out.resize(len * c, 0.0);
            m.clear();
            m.resize(len * c, false);
            let d = layer.dilation;
            for t in 0..len {
                let cur = &h[t * c..(t + 1) * c];
                let prev = (t >= d).then(|| &h[(t - d) * c..(t - d + 1) * c]);
                for o in 0..c {
                    let mut z = layer.bias[o] + dot(&layer.a[o * c..(o + 1) * c], cur);
                    if let Some(p) = prev {
                        z += dot(&layer.b[o * c..(o + 1) * c], p);
                    }
                    m[t * c + o] = z > 0.0;
                    out[t * c + o] = cur[o] + z.max(0.0);
                }
            }
        }
        let last = &trace.acts[self.layers.len()];
        trace.logits.clear();
        trace.logits.resize(len * 2, 0.0);
        for t in 0..len {
            let h = &last[t * c..(t + 1) * c];
            for k in 0..2 {
                trace.logits[t * 2 + k] = self.b_out[k] + dot(&self.w_out[k * c..(k + 1) * c], h);
            }
        }
    }

    /// Backward pass of the last [`Self::forward`]: `d_logits` (`len × 2`) is the loss
    /// gradient with respect to the logits; the weight gradients are added into `grad` (laid
    /// out as [`Self::flat`]).
    pub fn backward(&self, x: &[f32], trace: &Trace, d_logits: &[f32], grad: &mut [f32]) {
        let (c, n_in, len) = (self.channels, self.inputs, trace.len);
        let n_layers = self.layers.len();
        let offsets = self.offsets();
        let mut dh = vec![0.0f32; len * c];
        {
            let last = &trace.acts[n_layers];
            let (gw, gb) = (offsets.w_out, offsets.b_out);
            for t in 0..len {
                for k in 0..2 {
                    let g = d_logits[t * 2 + k];
                    if g == 0.0 {
                        continue;
                    }
                    grad[gb + k] += g;
                    for i in 0..c {
                        grad[gw + k * c + i] += g * last[t * c + i];
                        dh[t * c + i] += g * self.w_out[k * c + i];
                    }
                }
            }
        }
        let mut g = vec![0.0f32; c];
        // `dh` is the gradient with respect to layer l's output; `below` becomes the one with
        // respect to its input: the residual passes dh through, the conv branch adds to it.
        let mut below = vec![0.0f32; len * c];
        for l in (0..n_layers).rev() {
            let layer = &self.layers[l];
            let (h, m) = (&trace.acts[l], &trace.masks[l + 1]);
            let (ga, gbw, gbias) = offsets.layers[l];
            let d = layer.dilation;
            below.copy_from_slice(&dh);
            for t in 0..len {
                for o in 0..c {
                    g[o] = if m[t * c + o] { dh[t * c + o] } else { 0.0 };
                }
                if g.iter().all(|&v| v == 0.0) {
                    continue;
                }
                for o in 0..c {
                    let go = g[o];
                    if go == 0.0 {
                        continue;
                    }
                    grad[gbias + o] += go;
                    for i in 0..c {
                        grad[ga + o * c + i] += go * h[t * c + i];
                    }
                    if t >= d {
                        for i in 0..c {
                            grad[gbw + o * c + i] += go * h[(t - d) * c + i];
                        }
                    }
                }
                for i in 0..c {
                    let mut s = 0.0;
                    for o in 0..c {
                        s += g[o] * layer.a[o * c + i];
                    }
                    below[t * c + i] += s;
                }
                if t >= d {
                    for i in 0..c {
                        let mut s = 0.0;
                        for o in 0..c {
                            s += g[o] * layer.b[o * c + i];
                        }
                        below[(t - d) * c + i] += s;
                    }
                }
            }
            std::mem::swap(&mut dh, &mut below);
        }
        let m = &trace.masks[0];
        let (gw, gb) = (offsets.w_in, offsets.b_in);
        for t in 0..len {
            let xt = &x[t * n_in..(t + 1) * n_in];
            for o in 0..c {
                if !m[t * c + o] {
                    continue;
                }
                let go = dh[t * c + o];
                if go == 0.0 {
                    continue;
                }
                grad[gb + o] += go;
                for (gi, xi) in grad[gw + o * n_in..gw + (o + 1) * n_in].iter_mut().zip(xt) {
                    *gi += go * xi;
                }
            }
        }
    }

    fn offsets(&self) -> Offsets {
        let (c, n_in) = (self.channels, self.inputs);
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at;
            at += n;
            o
        };
        let w_in = take(c * n_in);
        let b_in = take(c);
        let layers = self
            .layers
            .iter()
            .map(|_| (take(c * c), take(c * c), take(c)))
            .collect();
        let w_out = take(2 * c);
        let b_out = take(2);
        Offsets {
            w_in,
            b_in,
            layers,
            w_out,
            b_out,
            len: at,
        }
    }

    fn flat_len(&self) -> usize {
        self.offsets().len
    }

    /// Every weight in one vector (the layout of gradients and of the optimizer's state).
    pub fn flat(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.flat_len());
        v.extend_from_slice(&self.w_in);
        v.extend_from_slice(&self.b_in);
        for l in &self.layers {
            v.extend_from_slice(&l.a);
            v.extend_from_slice(&l.b);
            v.extend_from_slice(&l.bias);
        }
        v.extend_from_slice(&self.w_out);
        v.extend_from_slice(&self.b_out);
        v
    }

    /// Sets every weight from a vector laid out as [`Self::flat`].
    pub fn set_flat(&mut self, v: &[f32]) {
        let mut at = 0;
        let mut fill = |dst: &mut Vec<f32>| {
            let n = dst.len();
            dst.copy_from_slice(&v[at..at + n]);
            at += n;
        };
        fill(&mut self.w_in);
        fill(&mut self.b_in);
        for l in &mut self.layers {
            fill(&mut l.a);
            fill(&mut l.b);
            fill(&mut l.bias);
        }
        fill(&mut self.w_out);
        fill(&mut self.b_out);
    }
}

/// One series' running state for step-by-step inference: the last outputs of the embedding
/// and of every layer (a ring as long as the largest dilation + 1), so a new step costs one
/// position of each layer instead of the whole window.
#[derive(Debug, Clone)]
pub struct Stream {
    levels: Vec<Vec<f32>>,
    ring: usize,
    steps: usize,
}

impl Stream {
    /// Steps added so far.
    pub fn steps(&self) -> usize {
        self.steps
    }
}

impl Net {
    /// An empty running state for [`Self::step`].
    pub fn stream(&self) -> Stream {
        let ring = 1 + self.layers.iter().map(|l| l.dilation).max().unwrap_or(0);
        Stream {
            levels: vec![vec![0.0; ring * self.channels]; self.layers.len() + 1],
            ring,
            steps: 0,
        }
    }

    /// Adds one step (`x`: `inputs` values) to `s` and returns its two logits. From the
    /// `window()`-th step on they equal, bit for bit, the last logits of [`Self::forward`] over
    /// the last `window()` steps: every position is computed by the same expressions, and the
    /// positions the last output reads have their full history in both.
    pub fn step(&self, s: &mut Stream, x: &[f32]) -> [f32; 2] {
        let (c, n_in) = (self.channels, self.inputs);
        let t = s.steps;
        let slot = t % s.ring;
        {
            let e = &mut s.levels[0][slot * c..(slot + 1) * c];
            for (o, v) in e.iter_mut().enumerate() {
                let z = self.b_in[o] + dot(&self.w_in[o * n_in..(o + 1) * n_in], x);
                *v = z.max(0.0);
            }
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let d = layer.dilation;
            let (below, above) = s.levels.split_at_mut(l + 1);
            let h = &below[l];
            let out = &mut above[0][slot * c..(slot + 1) * c];
            let cur = &h[slot * c..(slot + 1) * c];
            let prev = (t >= d).then(|| {
                let p = (t - d) % s.ring;
                &h[p * c..(p + 1) * c]
            });
            for (o, v) in out.iter_mut().enumerate() {
                let mut z = layer.bias[o] + dot(&layer.a[o * c..(o + 1) * c], cur);
                if let Some(p) = prev {
                    z += dot(&layer.b[o * c..(o + 1) * c], p);
                }
                *v = cur[o] + z.max(0.0);
            }
        }
        s.steps += 1;
        let last = &s.levels[self.layers.len()][slot * c..(slot + 1) * c];
        [
            self.b_out[0] + dot(&self.w_out[..c], last),
            self.b_out[1] + dot(&self.w_out[c..2 * c], last),
        ]
    }
}

struct Offsets {
    w_in: usize,
    b_in: usize,
    layers: Vec<(usize, usize, usize)>,
    w_out: usize,
    b_out: usize,
    len: usize,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four partial sums: the same order every call, so a result depends only on the inputs.
    let mut s = [0.0f32; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        s[0] += x[0] * y[0];
        s[1] += x[1] * y[1];
        s[2] += x[2] * y[2];
        s[3] += x[3] * y[3];
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// Binary cross-entropy of a logit against a 0/1 target, and its gradient.
pub fn bce(logit: f32, target: f32) -> (f32, f32) {
    let p = 1.0 / (1.0 + (-logit).exp());
    // log(1 + e^-|z|) + max(z, 0) - z·y, stable for large |z|.
    let loss = logit.max(0.0) - logit * target + (-logit.abs()).exp().ln_1p();
    (loss, p - target)
}

/// The Adam optimizer (with decoupled weight decay) over a flat weight vector.
#[derive(Debug, Clone)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
    pub lr: f32,
    pub weight_decay: f32,
}

impl Adam {
    pub fn new(n: usize, lr: f32, weight_decay: f32) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            lr,
            weight_decay,
        }
    }

    pub fn step(&mut self, w: &mut [f32], g: &[f32]) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        for i in 0..w.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * g[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * g[i] * g[i];
            let upd = (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
            w[i] -= self.lr * (upd + self.weight_decay * w[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss_of(net: &Net, x: &[f32], len: usize, targets: &[f32]) -> f64 {
        let mut tr = Trace::default();
        net.forward(x, len, &mut tr);
        let w = net.window();
        let mut s = 0.0f64;
        for t in w - 1..len {
            for k in 0..2 {
                s += f64::from(bce(tr.logits[t * 2 + k], targets[t * 2 + k]).0);
            }
        }
        s
    }

    #[test]
    fn backpropagation_matches_finite_differences() {
        let (inputs, channels) = (5, 4);
        let mut net = Net::new(inputs, channels, &[1, 2, 4], 11);
        let len = net.window() + 6;
        let mut rng = Rng::new(3);
        // Biases start at zero, which puts a unit that reads only zeros exactly on its ReLU
        // kink; move every weight a little so the finite differences are taken off the kinks.
        let moved: Vec<f32> = net.flat().iter().map(|w| w + rng.uniform(0.1)).collect();
        net.set_flat(&moved);
        let x: Vec<f32> = (0..len * inputs).map(|_| rng.uniform(1.5)).collect();
        let targets: Vec<f32> = (0..len * 2)
            .map(|_| f32::from(u8::from(rng.unit() < 0.5)))
            .collect();
        let mut tr = Trace::default();
        net.forward(&x, len, &mut tr);
        let mut d = vec![0.0f32; len * 2];
        for t in net.window() - 1..len {
            for k in 0..2 {
                d[t * 2 + k] = bce(tr.logits[t * 2 + k], targets[t * 2 + k]).1;
            }
        }
        let mut grad = vec![0.0f32; net.parameters()];
        net.backward(&x, &tr, &d, &mut grad);
        let w0 = net.flat();
        let numeric = |i: usize, h: f32| -> f64 {
            let at = |delta: f32| {
                let mut w = w0.clone();
                w[i] += delta;
                let mut n = net.clone();
                n.set_flat(&w);
                loss_of(&n, &x, len, &targets)
            };
            (at(h) - at(-h)) / (2.0 * f64::from(h))
        };
        // Agreement within 2% (of the larger of the two, or of 0.05 for small gradients, where
        // the f32 forward pass's rounding dominates) at one of two step sizes: a ReLU kink
        // crossed by ±h spoils the central difference at one size, rarely at both.
        let mut disagree = Vec::new();
        for (i, &g) in grad.iter().enumerate() {
            let ana = f64::from(g);
            let ok = [1e-3f32, 2e-4].iter().any(|&h| {
                let num = numeric(i, h);
                (num - ana).abs() / num.abs().max(ana.abs()).max(0.05) < 0.02
            });
            if !ok {
                disagree.push((i, numeric(i, 1e-3), ana));
            }
        }
        assert!(
            disagree.is_empty(),
            "weights whose gradient is off: {disagree:?}"
        );
        // And the gradient is not trivially zero.
        assert!(grad.iter().filter(|g| g.abs() > 1e-4).count() > w0.len() / 2);
    }

    #[test]
    fn stepping_one_candle_at_a_time_gives_the_windows_logits_bit_for_bit() {
        let net = Net::new(6, 8, &[1, 2, 4, 8, 16], 3);
        let w = net.window();
        let mut rng = Rng::new(4);
        let len = 120;
        let x: Vec<f32> = (0..len * 6).map(|_| rng.uniform(2.0)).collect();
        let mut s = net.stream();
        let mut tr = Trace::default();
        for t in 0..len {
            let got = net.step(&mut s, &x[t * 6..(t + 1) * 6]);
            if t + 1 >= w {
                net.forward(&x[(t + 1 - w) * 6..(t + 1) * 6], w, &mut tr);
                assert_eq!(got[..], tr.logits[(w - 1) * 2..], "step {t}");
            }
        }
        assert_eq!(s.steps(), len);
    }

    #[test]
    fn the_window_is_one_plus_the_dilations_and_earlier_steps_do_not_matter() {
        let net = Net::new(3, 16, &[1, 2, 4, 8, 16], 5);
        assert_eq!(net.window(), 32);
        let mut rng = Rng::new(9);
        let len = 40;
        let x: Vec<f32> = (0..len * 3).map(|_| rng.uniform(1.0)).collect();
        let mut a = Trace::default();
        net.forward(&x, len, &mut a);
        // The last 32 steps alone give the same last logits, bit for bit.
        let mut b = Trace::default();
        net.forward(&x[(len - 32) * 3..], 32, &mut b);
        assert_eq!(a.logits[(len - 1) * 2..], b.logits[31 * 2..]);
        // Changing a step 32 back changes nothing; changing one 31 back does.
        let mut y = x.clone();
        y[(len - 33) * 3] += 1.0;
        let mut c = Trace::default();
        net.forward(&y, len, &mut c);
        assert_eq!(a.logits[(len - 1) * 2..], c.logits[(len - 1) * 2..]);
        let mut z = x.clone();
        for v in &mut z[(len - 32) * 3..(len - 31) * 3] {
            *v += 1.0;
        }
        net.forward(&z, len, &mut c);
        assert_ne!(a.logits[(len - 1) * 2..], c.logits[(len - 1) * 2..]);
    }
}
