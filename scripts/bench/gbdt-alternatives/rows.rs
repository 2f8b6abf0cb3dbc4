// Shared by the two scratch crates (`#[path]`): reads a `gbdt_rows export` file and computes
// a rank AUC. Kept outside the workspace: these crates only measure the alternatives.

pub struct Part {
    pub x: Vec<f64>,
    pub y: Vec<u8>,
}

pub fn read_rows(path: &str) -> (serde_json::Value, usize, Part, Part) {
    let bytes = std::fs::read(path).expect("rows file");
    let magic = b"QTGBDTROWS 1\n";
    assert!(bytes.starts_with(magic), "not a gbdt rows file");
    let rest = &bytes[magic.len()..];
    let nl = rest.iter().position(|&b| b == b'\n').expect("header");
    let header: serde_json::Value = serde_json::from_slice(&rest[..nl]).expect("json header");
    let nf = header["features"].as_array().expect("features").len();
    let mut off = nl + 1;
    let mut part = |key: &str| {
        let n = header[key].as_u64().expect("count") as usize;
        let x = rest[off..off + n * nf * 8]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        off += n * nf * 8;
        let y = rest[off..off + n].to_vec();
        off += n;
        Part { x, y }
    };
    let fit = part("fit");
    let _cal = part("calibration");
    let test = part("test");
    (header, nf, fit, test)
}

pub fn auc(scores: &[f64], positive: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_pos, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        rank_pos += idx[i..=j].iter().filter(|&&k| positive[k]).count() as f64 * r;
        i = j + 1;
    }
    let pos = positive.iter().filter(|&&p| p).count() as f64;
    let neg = positive.len() as f64 - pos;
    (rank_pos - pos * (pos + 1.0) / 2.0) / (pos * neg)
}
