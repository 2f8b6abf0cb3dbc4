//! The gbdt prediction fast path: both one-vs-rest forust boosters compiled once (at training or
//! artifact load) into flat, cache-friendly arrays that give bit-for-bit forust's raw scores.
//!
//! Layout. Every split value of a feature, over all trees of both models, goes into one sorted
//! list of distinct cuts per feature. A row is first turned into ranks, once for both models:
//! `rank(v) = number of cuts <= v`, so for the cut at 1-based position `j`, `v < cut_j` exactly
//! when `rank(v) < j` (the cuts are sorted and distinct). A split is then 2 bytes: a rank slot
//! (6 bits) and `j` (10 bits), so the 31 splits of a depth-5 tree fill one cache line. Each tree is stored as a complete binary tree of the forest's depth `D` in breadth-first
//! order (children of `i` at `2i+1`, `2i+2`) in a block of `2^D` splits (the last unused), with a
//! block of `2^D` leaf weights as the `f32` forust stores. A leaf above depth `D` is copied to every leaf of its padded subtree, so
//! every walk is exactly `D` branch-free steps. The leaf weights are added to the base score in
//! tree order, as `GradientBooster::predict` does, so the sums are identical, not just close.
//!
//! Missing values follow forust with `missing = NaN`: a NaN goes to the split's missing child,
//! which for a two-way split is the left or the right child. Each feature has two rank slots:
//! one where NaN ranks above every cut (so it goes right) and one where it ranks 0 (so it goes
//! left, since `j >= 1`); a split reads the slot of its missing direction.
//!
//! What it does not take (`compile` returns `None` and the model keeps forust's own tree walk):
//! a `missing` value other than NaN, three-way splits (a separate missing branch), trees deeper
//! than [`MAX_DEPTH`], NaN split values, features beyond [`N_FEATURES`], more than 1,023
//! distinct cuts of one feature (forust makes at most `nbins` per feature; the default is 64), or malformed node links. It never changes what a model
//! predicts, only how fast.

use forust_ml::GradientBooster;
use forust_ml::tree::Tree;
use qt_features::N_FEATURES;

/// Deepest trees the flat layout takes (`2^12` leaves per tree).
pub(crate) const MAX_DEPTH: usize = 12;

/// Rank slots: two per feature, rounded up to a power of two so a mask replaces the bounds
/// check (`compile` only writes slots below `2 * N_FEATURES`).
const RANKS: usize = (2 * N_FEATURES).next_power_of_two();
/// Bits of a split that hold the rank slot; the rest hold the cut position.
const SLOT_BITS: u32 = RANKS.trailing_zeros();
/// Most distinct cuts of one feature a split can point at.
const MAX_CUTS: usize = (1 << (16 - SLOT_BITS)) - 1;
const _: () = assert!(MAX_CUTS >= 255, "too many features for 2-byte splits");

/// One split in 2 bytes: go right when `ranks[slot] >= rank`, where `slot` is
/// `2 * feature` (NaN goes right) or `2 * feature + 1` (NaN goes left), and `rank` the 1-based
/// position of the split value in the feature's sorted cuts. The default (slot 0, rank 0) is
/// the padding split: always right, both of its sides hold the same leaf.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Split(u16);

impl Split {
    fn new(slot: usize, rank: usize) -> Option<Self> {
        if slot >= RANKS || rank > MAX_CUTS {
            return None;
        }
        u16::try_from(slot | rank << SLOT_BITS).ok().map(Split)
    }

    #[inline(always)]
    fn slot(self) -> usize {
        usize::from(self.0) & (RANKS - 1)
    }

    #[inline(always)]
    fn rank(self) -> u16 {
        self.0 >> SLOT_BITS
    }
}

/// The trees of one booster inside the flat arrays.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Part {
    base_score: f64,
    first_tree: usize,
    trees: usize,
}

/// Both boosters of a `GbdtModel` (BUY model first, SELL second) in flat arrays.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FlatForest {
    depth: usize,
    /// Distinct split values of all features, ascending per feature; feature `f`'s cuts are
    /// `cuts[cut_start[f]..cut_start[f + 1]]`.
    cuts: Vec<f64>,
    cut_start: [usize; N_FEATURES + 1],
    /// `2^depth - 1` splits per tree, trees of both models one after the other.
    splits: Vec<Split>,
    /// `2^depth` leaf weights per tree.
    leaves: Vec<f32>,
    parts: [Part; 2],
}

/// Trees a booster predicts with (forust's `get_prediction_trees`, without its panic when
/// `prediction_iteration` exceeds the trees).
fn prediction_trees(b: &GradientBooster) -> &[Tree] {
    let n = b
        .prediction_iteration
        .unwrap_or(b.trees.len())
        .min(b.trees.len());
    &b.trees[..n]
}

/// Depth of the subtree under `node` (a leaf is 0), or `None` when a link is broken or the
/// depth exceeds [`MAX_DEPTH`] (which also stops a cycle).
fn depth_of(tree: &Tree, node: usize, level: usize) -> Option<usize> {
    let n = tree.nodes.get(node)?;
    if n.is_leaf {
        return Some(0);
    }
    if level >= MAX_DEPTH {
        return None;
    }
    if n.missing_node != n.left_child && n.missing_node != n.right_child {
        return None; // a separate missing branch
    }
    if n.split_feature >= N_FEATURES || n.split_value.is_nan() {
        return None;
    }
    let l = depth_of(tree, n.left_child, level + 1)?;
    let r = depth_of(tree, n.right_child, level + 1)?;
    Some(1 + l.max(r))
}

/// Adds the split values of the reachable splits under `node` to `cuts`.
fn collect_cuts(tree: &Tree, node: usize, cuts: &mut [Vec<f64>]) {
    let Some(n) = tree.nodes.get(node) else {
        return;
    };
    if n.is_leaf {
        return;
    }
    if let Some(c) = cuts.get_mut(n.split_feature) {
        c.push(n.split_value);
    }
    collect_cuts(tree, n.left_child, cuts);
    collect_cuts(tree, n.right_child, cuts);
}

/// Where a tree goes in the flat arrays.
struct Dest<'a> {
    depth: usize,
    splits: &'a mut [Split],
    leaves: &'a mut [f32],
}

impl FlatForest {
    /// Compiles the prediction trees of both boosters, or `None` when they use something the
    /// flat layout does not take (see the module doc).
    pub(crate) fn compile(buy: &GradientBooster, sell: &GradientBooster) -> Option<Self> {
        let boosters = [buy, sell];
        if boosters.iter().any(|b| !b.missing.is_nan()) {
            return None;
        }
        let mut depth = 0;
        for b in boosters {
            for t in prediction_trees(b) {
                depth = depth.max(depth_of(t, 0, 0)?);
            }
        }
        let mut per_feature: Vec<Vec<f64>> = vec![Vec::new(); N_FEATURES];
        for b in boosters {
            for t in prediction_trees(b) {
                collect_cuts(t, 0, &mut per_feature);
            }
        }
        let mut cuts = Vec::new();
        let mut cut_start = [0usize; N_FEATURES + 1];
        for (f, c) in per_feature.iter_mut().enumerate() {
            c.sort_by(f64::total_cmp);
            // -0.0 and 0.0 compare equal, so they are one cut.
            c.dedup_by(|a, b| a == b);
            if c.len() > MAX_CUTS {
                return None;
            }
            cuts.extend_from_slice(c);
            cut_start[f + 1] = cuts.len();
        }
        // Each tree takes a block of `2^depth` splits (the last one unused) and as many leaves,
        // so the walk indexes fixed-size arrays with a mask instead of checked slices.
        let block = 1usize << depth;
        let total: usize = boosters.iter().map(|b| prediction_trees(b).len()).sum();
        let mut splits = vec![Split::default(); total * block];
        let mut leaves = vec![0.0f32; total * block];
        let mut parts = [Part {
            base_score: 0.0,
            first_tree: 0,
            trees: 0,
        }; 2];
        let mut k = 0;
        for (part, b) in parts.iter_mut().zip(boosters) {
            let trees = prediction_trees(b);
            *part = Part {
                base_score: b.base_score,
                first_tree: k,
                trees: trees.len(),
            };
            for t in trees {
                let mut dest = Dest {
                    depth,
                    splits: &mut splits[k * block..(k + 1) * block],
                    leaves: &mut leaves[k * block..(k + 1) * block],
                };
                place(t, 0, 0, 0, &mut dest, &per_feature)?;
                k += 1;
            }
        }
        Some(FlatForest {
            depth,
            cuts,
            cut_start,
            splits,
            leaves,
            parts,
        })
    }

    /// Depth every tree is padded to.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Trees of both models.
    pub(crate) fn trees(&self) -> usize {
        self.parts[0].trees + self.parts[1].trees
    }

    /// Raw scores (log odds) of the BUY and SELL models for one row; a feature missing from a
    /// short row counts as NaN (missing).
    pub(crate) fn raw_scores(&self, row: &[f64]) -> (f64, f64) {
        let mut ranks = [0u16; RANKS];
        for f in 0..N_FEATURES {
            let cuts = &self.cuts[self.cut_start[f]..self.cut_start[f + 1]];
            if cuts.is_empty() {
                continue;
            }
            let v = row.get(f).copied().unwrap_or(f64::NAN);
            let (right, left) = if v.is_nan() {
                (u16::MAX, 0)
            } else {
                // At most MAX_CUTS cuts (checked in `compile`), so this fits.
                let r = cuts.partition_point(|c| *c <= v) as u16;
                (r, r)
            };
            ranks[2 * f] = right;
            ranks[2 * f + 1] = left;
        }
        match self.depth {
            0 => self.sums::<0, 1>(&ranks),
            1 => self.sums::<1, 2>(&ranks),
            2 => self.sums::<2, 4>(&ranks),
            3 => self.sums::<3, 8>(&ranks),
            4 => self.sums::<4, 16>(&ranks),
            5 => self.sums::<5, 32>(&ranks),
            6 => self.sums::<6, 64>(&ranks),
            7 => self.sums::<7, 128>(&ranks),
            8 => self.sums::<8, 256>(&ranks),
            9 => self.sums::<9, 512>(&ranks),
            10 => self.sums::<10, 1024>(&ranks),
            11 => self.sums::<11, 2048>(&ranks),
            // `compile` takes no tree deeper than MAX_DEPTH = 12.
            _ => self.sums::<12, 4096>(&ranks),
        }
    }

    /// The trees of one model as blocks of `N = 2^D` splits and leaves.
    #[allow(clippy::type_complexity)]
    fn blocks<const N: usize>(&self, p: &Part) -> (&[[Split; N]], &[[f32; N]]) {
        let range = p.first_tree * N..(p.first_tree + p.trees) * N;
        (
            self.splits[range.clone()].as_chunks::<N>().0,
            self.leaves[range].as_chunks::<N>().0,
        )
    }

    /// Base score plus the leaf of every tree, in tree order, for both models. Depth `D` and
    /// block size `N = 2^D` are known at compile time, so each walk is `D` unrolled steps
    /// without bounds checks; the trees are walked [`LANES`] per model at a time (independent
    /// chains the CPU overlaps), then their leaves are added in tree order.
    fn sums<const D: usize, const N: usize>(&self, ranks: &[u16; RANKS]) -> (f64, f64) {
        debug_assert_eq!(N, 1 << D);
        let [pb, ps] = &self.parts;
        let (bs, bl) = self.blocks::<N>(pb);
        let (ss, sl) = self.blocks::<N>(ps);
        let (mut acc_b, mut acc_s) = (pb.base_score, ps.base_score);
        let common = bs.len().min(ss.len()) / LANES * LANES;
        for k in (0..common).step_by(LANES) {
            let mut lb = [0.0f32; LANES];
            let mut ls = [0.0f32; LANES];
            for j in 0..LANES {
                lb[j] = walk::<D, N>(&bs[k + j], &bl[k + j], ranks);
                ls[j] = walk::<D, N>(&ss[k + j], &sl[k + j], ranks);
            }
            for j in 0..LANES {
                acc_b += f64::from(lb[j]);
                acc_s += f64::from(ls[j]);
            }
        }
        for (t, l) in bs[common..].iter().zip(&bl[common..]) {
            acc_b += f64::from(walk::<D, N>(t, l, ranks));
        }
        for (t, l) in ss[common..].iter().zip(&sl[common..]) {
            acc_s += f64::from(walk::<D, N>(t, l, ranks));
        }
        (acc_b, acc_s)
    }
}

/// Trees walked side by side per model.
const LANES: usize = 4;

/// The leaf weight a row reaches in one padded tree of depth `D` (`N = 2^D`).
#[inline(always)]
fn walk<const D: usize, const N: usize>(
    tree: &[Split; N],
    leaves: &[f32; N],
    ranks: &[u16; RANKS],
) -> f32 {
    let mut i = 0usize;
    for _ in 0..D {
        let s = tree[i & (N - 1)];
        let right = ranks[s.slot()] >= s.rank();
        i = 2 * i + 1 + usize::from(right);
    }
    // After D steps `i` is in N - 1 ..= 2N - 2: leaf `i - (N - 1)`.
    leaves[(i + 1 - N) & (N - 1)]
}

/// Writes the subtree under forust node `node` at breadth-first position `pos` (on `level`)
/// of the padded tree.
fn place(
    tree: &Tree,
    node: usize,
    pos: usize,
    level: usize,
    dest: &mut Dest<'_>,
    cuts: &[Vec<f64>],
) -> Option<()> {
    let n = tree.nodes.get(node)?;
    if n.is_leaf || level == dest.depth {
        if !n.is_leaf {
            return None; // deeper than measured: cannot happen for a tree `depth_of` accepted
        }
        // Every leaf of the padded subtree under `pos` gets this weight.
        let below = dest.depth - level;
        let first = (pos << below) + (1 << below) - 1 - ((1 << dest.depth) - 1);
        dest.leaves
            .get_mut(first..first + (1 << below))?
            .fill(n.weight_value);
        return Some(());
    }
    let feature_cuts = cuts.get(n.split_feature)?;
    let j = feature_cuts.partition_point(|c| *c < n.split_value);
    if feature_cuts.get(j) != Some(&n.split_value) {
        return None;
    }
    let nan_left = n.missing_node == n.left_child && n.missing_node != n.right_child;
    *dest.splits.get_mut(pos)? = Split::new(2 * n.split_feature + usize::from(nan_left), j + 1)?;
    place(tree, n.left_child, 2 * pos + 1, level + 1, dest, cuts)?;
    place(tree, n.right_child, 2 * pos + 2, level + 1, dest, cuts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use forust_ml::Matrix;
    use serde_json::json;

    /// A booster with hand-written trees: each tree is a list of nodes
    /// `(feature, split value, left, right, missing)` for splits and `weight` for leaves.
    fn booster(base_score: f64, trees: &[Vec<serde_json::Value>]) -> GradientBooster {
        let mut v: serde_json::Value =
            serde_json::from_str(&GradientBooster::default().json_dump().expect("dumps"))
                .expect("json");
        v["base_score"] = json!(base_score);
        v["trees"] = json!(
            trees
                .iter()
                .map(|nodes| json!({ "nodes": nodes }))
                .collect::<Vec<_>>()
        );
        GradientBooster::from_json(&v.to_string()).expect("loads")
    }

    fn split(num: usize, f: usize, value: f64, l: usize, r: usize, m: usize) -> serde_json::Value {
        json!({"num": num, "weight_value": 0.0, "hessian_sum": 1.0, "depth": 0,
            "split_value": value, "split_feature": f, "split_gain": 1.0,
            "missing_node": m, "left_child": l, "right_child": r, "is_leaf": false})
    }

    fn leaf(num: usize, w: f32) -> serde_json::Value {
        json!({"num": num, "weight_value": w, "hessian_sum": 1.0, "depth": 0,
            "split_value": 0.0, "split_feature": 0, "split_gain": 0.0,
            "missing_node": 0, "left_child": 0, "right_child": 0, "is_leaf": true})
    }

    /// forust's own batch predict of one row.
    fn forust(b: &GradientBooster, row: &[f64; N_FEATURES]) -> f64 {
        // Column-major with one row is the row itself.
        b.predict(&Matrix::new(row, 1, N_FEATURES), false)[0]
    }

    fn row(values: &[(usize, f64)]) -> [f64; N_FEATURES] {
        let mut r = [0.5; N_FEATURES];
        for &(f, v) in values {
            r[f] = v;
        }
        r
    }

    #[test]
    fn split_values_nan_and_uneven_depths_walk_exactly_like_forust() {
        // Tree 1: depth 3 on the left, a leaf on the right; NaN goes left at the root and
        // right below it. Tree 2: a lone leaf. Tree 3: the same feature and value as tree 1's
        // root, NaN right (the two missing directions share one cut).
        let buy = booster(
            -1.25,
            &[
                vec![
                    split(0, 3, 0.1, 1, 2, 1),
                    split(1, 7, -2.0, 3, 4, 4),
                    leaf(2, 0.75),
                    leaf(3, -0.5),
                    split(4, 3, -0.0, 5, 6, 6),
                    leaf(5, 0.125),
                    leaf(6, 0.3),
                ],
                vec![leaf(0, 0.01)],
                vec![split(0, 3, 0.1, 1, 2, 2), leaf(1, 1.5), leaf(2, -1.5)],
            ],
        );
        let sell = booster(
            0.5,
            &[vec![
                split(0, 30, f64::MAX, 1, 2, 1),
                leaf(1, 0.2),
                leaf(2, -0.2),
            ]],
        );
        let flat = FlatForest::compile(&buy, &sell).expect("compiles");
        assert_eq!(flat.depth(), 3);
        assert_eq!(flat.trees(), 4);
        let values = [
            f64::NAN,
            0.1,
            0.1f64.next_down(),
            0.1f64.next_up(),
            -2.0,
            (-2.0f64).next_up(),
            0.0,
            -0.0,
            -1e-300,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut checked = 0;
        for &a in &values {
            for &b in &values {
                for &c in &values {
                    let r = row(&[(3, a), (7, b), (30, c)]);
                    let (rb, rs) = flat.raw_scores(&r);
                    assert_eq!(rb.to_bits(), forust(&buy, &r).to_bits(), "{a} {b} {c}");
                    assert_eq!(rs.to_bits(), forust(&sell, &r).to_bits(), "{a} {b} {c}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, values.len().pow(3));
    }

    #[test]
    fn a_short_row_counts_its_absent_features_as_missing() {
        let buy = booster(
            0.0,
            &[vec![split(0, 20, 1.0, 1, 2, 1), leaf(1, 1.0), leaf(2, 2.0)]],
        );
        let sell = booster(0.0, &[vec![leaf(0, 0.0)]]);
        let flat = FlatForest::compile(&buy, &sell).expect("compiles");
        assert_eq!(flat.raw_scores(&[5.0; 3]).0, 1.0, "NaN goes left here");
        assert_eq!(flat.raw_scores(&[5.0; N_FEATURES]).0, 2.0);
    }

    #[test]
    fn what_the_flat_layout_cannot_take_is_refused_not_approximated() {
        let fine = booster(0.0, &[vec![leaf(0, 0.0)]]);
        // A separate missing branch (three-way split).
        let three_way = booster(
            0.0,
            &[vec![
                split(0, 1, 0.0, 1, 2, 3),
                leaf(1, 1.0),
                leaf(2, 2.0),
                leaf(3, 3.0),
            ]],
        );
        assert!(FlatForest::compile(&three_way, &fine).is_none());
        // A missing value other than NaN.
        let mut zero_missing = booster(0.0, &[vec![leaf(0, 0.0)]]);
        zero_missing.missing = 0.0;
        assert!(FlatForest::compile(&fine, &zero_missing).is_none());
        // A feature this build does not compute.
        let far = booster(
            0.0,
            &[vec![
                split(0, N_FEATURES, 0.0, 1, 2, 1),
                leaf(1, 1.0),
                leaf(2, 2.0),
            ]],
        );
        assert!(FlatForest::compile(&far, &fine).is_none());
        // A broken link and a cycle.
        let broken = booster(0.0, &[vec![split(0, 1, 0.0, 1, 9, 1), leaf(1, 1.0)]]);
        assert!(FlatForest::compile(&broken, &fine).is_none());
        let cycle = booster(0.0, &[vec![split(0, 1, 0.0, 0, 1, 1), leaf(1, 1.0)]]);
        assert!(FlatForest::compile(&cycle, &fine).is_none());
        assert!(FlatForest::compile(&fine, &fine).is_some());
        // More distinct cuts of one feature than a 2-byte split can point at.
        let cuts = |n: usize| {
            let trees: Vec<Vec<serde_json::Value>> = (0..n)
                .map(|k| vec![split(0, 2, k as f64, 1, 2, 1), leaf(1, 1.0), leaf(2, 2.0)])
                .collect();
            booster(0.0, &trees)
        };
        assert!(FlatForest::compile(&cuts(MAX_CUTS), &fine).is_some());
        assert!(FlatForest::compile(&cuts(MAX_CUTS + 1), &fine).is_none());
    }

    #[test]
    fn prediction_iteration_limits_the_trees_used() {
        let mut buy = booster(
            0.0,
            &[
                vec![leaf(0, 1.0)],
                vec![leaf(0, 10.0)],
                vec![leaf(0, 100.0)],
            ],
        );
        let sell = booster(0.0, &[vec![leaf(0, 0.0)]]);
        buy.prediction_iteration = Some(2);
        let flat = FlatForest::compile(&buy, &sell).expect("compiles");
        assert_eq!(flat.raw_scores(&[0.0; N_FEATURES]).0, 11.0);
        assert_eq!(forust(&buy, &[0.0; N_FEATURES]), 11.0);
    }
}
