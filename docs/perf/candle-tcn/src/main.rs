//! The temporal model's TCN (1x1 embedding 37->16, five residual causal convs kernel 2 with
//! dilations 1..16, 1x1 head to 2 logits) in candle 0.11 on CPU: time of one training step
//! (8 chunks x (31 + 128) steps, BCE, backward, AdamW) and of one inference on a 32-step window.
use std::time::Instant;
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Optimizer, AdamW, ParamsAdamW};

struct Net { w_in: Var, b_in: Var, layers: Vec<(usize, Var, Var)>, w_out: Var, b_out: Var }

impl Net {
    fn new(dev: &Device) -> candle_core::Result<Self> {
        let r = |shape: &[usize], s: f64| Var::from_tensor(&(Tensor::rand(-1f32, 1f32, shape, dev)? * s)?);
        Ok(Net {
            w_in: r(&[16, 37, 1], 0.4)?, b_in: Var::zeros(16, DType::F32, dev)?,
            layers: [1usize, 2, 4, 8, 16].iter().map(|&d| Ok((d, r(&[16, 16, 2], 0.2)?, Var::zeros(16, DType::F32, dev)?))).collect::<candle_core::Result<_>>()?,
            w_out: r(&[2, 16, 1], 0.1)?, b_out: Var::zeros(2, DType::F32, dev)?,
        })
    }
    fn vars(&self) -> Vec<Var> {
        let mut v = vec![self.w_in.clone(), self.b_in.clone(), self.w_out.clone(), self.b_out.clone()];
        for (_, w, b) in &self.layers { v.push(w.clone()); v.push(b.clone()); }
        v
    }
    /// x: (B, 37, L) -> logits (B, 2, L)
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.conv1d(&self.w_in, 0, 1, 1, 1)?.broadcast_add(&self.b_in.reshape((1, 16, 1))?)?.relu()?;
        for (d, w, b) in &self.layers {
            let p = h.pad_with_zeros(D::Minus1, *d, 0)?;
            let z = p.conv1d(w, 0, 1, *d, 1)?.broadcast_add(&b.reshape((1, 16, 1))?)?;
            h = (h + z.relu()?)?;
        }
        h.conv1d(&self.w_out, 0, 1, 1, 1)?.broadcast_add(&self.b_out.reshape((1, 2, 1))?)
    }
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let net = Net::new(&dev)?;
    let mut opt = AdamW::new(net.vars(), ParamsAdamW { lr: 0.002, weight_decay: 1e-4, ..Default::default() })?;
    let (b, l) = (8usize, 31 + 128);
    let x = Tensor::rand(-1f32, 1f32, (b, 37, l), &dev)?;
    let y = Tensor::rand(0f32, 1f32, (b, 2, 128), &dev)?.ge(0.5)?.to_dtype(DType::F32)?;
    let steps = 200;
    for _ in 0..10 { let out = net.forward(&x)?.narrow(2, 31, 128)?; let loss = candle_nn::loss::binary_cross_entropy_with_logit(&out, &y)?; opt.backward_step(&loss)?; }
    let t = Instant::now();
    for _ in 0..steps {
        let out = net.forward(&x)?.narrow(2, 31, 128)?;
        let loss = candle_nn::loss::binary_cross_entropy_with_logit(&out, &y)?;
        opt.backward_step(&loss)?;
    }
    let per = t.elapsed().as_secs_f64() / steps as f64;
    println!("candle train step (8 chunks x 128 outputs = 1024 positions): {:.3} ms, {:.0} positions/s", per * 1e3, 1024.0 / per);
    let w = Tensor::rand(-1f32, 1f32, (1, 37, 32), &dev)?;
    let mut times = Vec::new();
    for i in 0..2000 {
        let t = Instant::now();
        let out = net.forward(&w)?.narrow(2, 31, 1)?.flatten_all()?.to_vec1::<f32>()?;
        if i >= 100 { times.push(t.elapsed().as_secs_f64() * 1e6); }
        std::hint::black_box(out);
    }
    times.sort_by(f64::total_cmp);
    println!("candle inference, one 32-step window: p50 {:.1} us, p99 {:.1} us", times[times.len() / 2], times[times.len() * 99 / 100]);
    Ok(())
}
