//! Kademlia routing table, behaving exactly like npm `kademlia-routing-table` 1.0.6 as used by
//! `dht-rpc` 6.27 (spec `dht-rpc.md` §8, §12.3 step 7).
//!
//! * 256 rows; a node lives in row `i` = the number of leading bits its id shares with the local
//!   id (an id equal to the local id maps to row 255, but the own id is never stored).
//! * Each row holds at most `k` nodes, kept **sorted by id** (byte-wise). Re-adding a stored id
//!   replaces its payload in place; adding a new id to a full row fails with
//!   [`AddResult::RowFull`] (the caller then runs ping-before-evict, §9).
//! * [`RoutingTable::closest`] is the JS bucket approximation, not an exact XOR sort: rows `d`,
//!   `d−1` … `0`, then `d+1` … `255`, each in stored order, where `d` is the target's row.
//!
//! The table is sans-IO and deterministic: [`RoutingTable::random`] takes the random number as an
//! argument.

/// Length of a node id in bytes.
pub const ID_LEN: usize = 32;

/// Number of rows (one per possible shared-prefix length).
pub const ROWS: usize = ID_LEN * 8;

/// Default bucket size (`k`) of dht-rpc.
pub const DEFAULT_K: usize = 20;

/// Outcome of [`RoutingTable::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddResult {
    /// The id was new and has been inserted (JS `add` returns `true`).
    Added,
    /// The id was already stored; its payload has been replaced in place (JS returns `true`).
    Updated,
    /// The id was new but its row already holds `k` nodes; nothing changed (JS returns `false`
    /// and the row emits `full` with the candidate).
    RowFull,
    /// The id equals the local id and was refused; nothing changed. (The JS table itself would
    /// store it in row 255; dht-rpc never offers it – `_addNode` checks first.)
    OwnId,
}

impl AddResult {
    /// Whether the JS `table.add` would have returned `true` (`Added` or `Updated`).
    pub fn is_stored(self) -> bool {
        matches!(self, Self::Added | Self::Updated)
    }
}

/// What [`RoutingTable::rebuild`] could not carry over to the new local id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt<T> {
    /// Nodes dropped because their row under the new id was already full, in the order they were
    /// tried. dht-rpc also removes these from its time-ordered node list.
    pub row_full: Vec<([u8; ID_LEN], T)>,
    /// The node whose id equals the new local id, if one was stored. dht-rpc skips it silently
    /// (and, unlike `row_full` nodes, leaves it in its time-ordered node list).
    pub own_id: Option<([u8; ID_LEN], T)>,
}

/// A Kademlia routing table mapping 32-byte node ids to a per-node payload `T`.
#[derive(Debug, Clone)]
pub struct RoutingTable<T> {
    id: [u8; ID_LEN],
    k: usize,
    size: usize,
    /// `rows[i]` holds the nodes sharing exactly `i` leading bits with `id`, sorted by id.
    rows: Vec<Vec<([u8; ID_LEN], T)>>,
}

/// Row index of `id` relative to `local`: the number of leading bits they share, 255 when equal
/// (identical to `kademlia-routing-table`'s `_diff`).
pub fn row_index(local: &[u8; ID_LEN], id: &[u8; ID_LEN]) -> usize {
    for (i, (a, b)) in id.iter().zip(local.iter()).enumerate() {
        if a != b {
            return i * 8 + (a ^ b).leading_zeros() as usize;
        }
    }
    ROWS - 1
}

impl<T> RoutingTable<T> {
    /// An empty table for `local_id` with bucket size `k`. As in JS (`opts.k || 20`), `k == 0`
    /// means the default, [`DEFAULT_K`].
    pub fn new(local_id: [u8; ID_LEN], k: usize) -> Self {
        let mut rows = Vec::with_capacity(ROWS);
        rows.resize_with(ROWS, Vec::new);
        Self {
            id: local_id,
            k: if k == 0 { DEFAULT_K } else { k },
            size: 0,
            rows,
        }
    }

    /// The local id the rows are computed against.
    pub fn local_id(&self) -> &[u8; ID_LEN] {
        &self.id
    }

    /// The bucket size (maximum nodes per row).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of stored nodes.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Whether no node is stored.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The row `id` belongs to (shared-prefix length with the local id; 255 for the local id).
    pub fn row_of(&self, id: &[u8; ID_LEN]) -> usize {
        row_index(&self.id, id)
    }

    /// The nodes of row `index` in stored (id) order; empty for `index >= 256`. Used by the
    /// ping-before-evict logic to pick the oldest node of a full row.
    pub fn row(&self, index: usize) -> impl ExactSizeIterator<Item = (&[u8; ID_LEN], &T)> + '_ {
        self.rows
            .get(index)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|(id, v)| (id, v))
    }

    fn find(&self, id: &[u8; ID_LEN]) -> (usize, Result<usize, usize>) {
        let r = self.row_of(id);
        (r, self.rows[r].binary_search_by(|(x, _)| x.cmp(id)))
    }

    /// Inserts or updates `id`. A new id goes into its row at its sorted position unless the row
    /// already holds `k` nodes ([`AddResult::RowFull`], nothing changes). A stored id gets its
    /// payload replaced ([`AddResult::Updated`], even when the row is full). The local id is
    /// refused ([`AddResult::OwnId`]).
    pub fn add(&mut self, id: [u8; ID_LEN], value: T) -> AddResult {
        if id == self.id {
            return AddResult::OwnId;
        }
        let (r, pos) = self.find(&id);
        let row = &mut self.rows[r];
        match pos {
            Ok(i) => {
                row[i].1 = value;
                AddResult::Updated
            }
            Err(_) if row.len() >= self.k => AddResult::RowFull,
            Err(i) => {
                row.insert(i, (id, value));
                self.size += 1;
                AddResult::Added
            }
        }
    }

    /// The payload stored for `id`.
    pub fn get(&self, id: &[u8; ID_LEN]) -> Option<&T> {
        match self.find(id) {
            (r, Ok(i)) => Some(&self.rows[r][i].1),
            (_, Err(_)) => None,
        }
    }

    /// Mutable access to the payload stored for `id`.
    pub fn get_mut(&mut self, id: &[u8; ID_LEN]) -> Option<&mut T> {
        match self.find(id) {
            (r, Ok(i)) => Some(&mut self.rows[r][i].1),
            (_, Err(_)) => None,
        }
    }

    /// Whether `id` is stored.
    pub fn has(&self, id: &[u8; ID_LEN]) -> bool {
        self.find(id).1.is_ok()
    }

    /// Removes `id`, returning its payload (JS `remove` returns whether it was present).
    pub fn remove(&mut self, id: &[u8; ID_LEN]) -> Option<T> {
        match self.find(id) {
            (r, Ok(i)) => {
                self.size -= 1;
                Some(self.rows[r].remove(i).1)
            }
            (_, Err(_)) => None,
        }
    }

    /// Up to `n` nodes "close" to `target`, in exactly the order of JS `closest(target, n)`:
    /// rows `d`, `d−1` … `0`, then `d+1` … `255` (`d` = row of `target`), each row in stored
    /// order. Pass `usize::MAX` for every node. Unlike JS, where a falsy `n` means `k`,
    /// `n == 0` returns nothing.
    pub fn closest(&self, target: &[u8; ID_LEN], n: usize) -> Vec<(&[u8; ID_LEN], &T)> {
        let d = self.row_of(target);
        let mut out = Vec::with_capacity(n.min(self.size));
        let order = (0..=d).rev().chain(d + 1..ROWS);
        for r in order {
            if out.len() >= n {
                break;
            }
            let take = n - out.len();
            out.extend(self.rows[r].iter().take(take).map(|(id, v)| (id, v)));
        }
        out
    }

    /// A node picked uniformly given a uniformly random `rng_value`: index
    /// `floor(rng_value · len / 2⁶⁴)` counted over rows 0 → 255 in stored order (the JS
    /// `random()` with `Math.random()` = `rng_value / 2⁶⁴`). `None` when empty.
    pub fn random(&self, rng_value: u64) -> Option<(&[u8; ID_LEN], &T)> {
        let mut n = ((u128::from(rng_value) * self.size as u128) >> 64) as usize;
        for row in &self.rows {
            if n < row.len() {
                let (id, v) = &row[n];
                return Some((id, v));
            }
            n -= row.len();
        }
        None
    }

    /// Every node, in JS `toArray()` order (rows 255 → 0, each in stored order; equal to
    /// `closest(local_id, usize::MAX)`).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; ID_LEN], &T)> + '_ {
        self.rows
            .iter()
            .rev()
            .flat_map(|row| row.iter().map(|(id, v)| (id, v)))
    }

    /// Mutable access to every node's payload, in the order of [`RoutingTable::iter`].
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&[u8; ID_LEN], &mut T)> + '_ {
        self.rows
            .iter_mut()
            .rev()
            .flat_map(|row| row.iter_mut().map(|(id, v)| (&*id, v)))
    }

    /// Re-keys the table to `new_local_id` like dht-rpc does after its id changes (§12.3 step 7):
    /// the old nodes are re-added in `toArray()` order into an empty table with the same `k`;
    /// a node whose id equals the new id is skipped and nodes whose new row is already full are
    /// dropped. Returns what was not carried over.
    pub fn rebuild(&mut self, new_local_id: [u8; ID_LEN]) -> Rebuilt<T> {
        let old = std::mem::replace(self, Self::new(new_local_id, self.k));
        let mut out = Rebuilt {
            row_full: Vec::new(),
            own_id: None,
        };
        for row in old.rows.into_iter().rev() {
            for (id, v) in row {
                if id == new_local_id {
                    out.own_id = Some((id, v));
                    continue;
                }
                // Ids are unique, so a node is either added or refused for a full row.
                if self.rows[self.row_of(&id)].len() >= self.k {
                    out.row_full.push((id, v));
                } else {
                    self.add(id, v);
                }
            }
        }
        out
    }
}

impl<'a, T> IntoIterator for &'a RoutingTable<T> {
    type Item = (&'a [u8; ID_LEN], &'a T);
    type IntoIter = Box<dyn Iterator<Item = Self::Item> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_with_prefix(local: &[u8; 32], shared: usize, fill: u8) -> [u8; 32] {
        // shares exactly `shared` leading bits with `local`, remaining bytes `fill`
        let mut id = [fill; 32];
        let byte = shared / 8;
        id[..byte].copy_from_slice(&local[..byte]);
        let bit = 7 - (shared % 8);
        let keep = !((1u16 << (bit + 1)) - 1) as u8; // bits above `bit`
        let flipped = (local[byte] ^ (1 << bit)) & (1 << bit);
        let low = fill & ((1u16 << bit) - 1) as u8;
        id[byte] = (local[byte] & keep) | flipped | low;
        id
    }

    #[test]
    fn row_index_edges() {
        let local = [0x5a; 32];
        assert_eq!(row_index(&local, &local), 255);
        let mut complement = local;
        for b in &mut complement {
            *b = !*b;
        }
        assert_eq!(row_index(&local, &complement), 0);
        let mut last = local;
        last[31] ^= 1;
        assert_eq!(row_index(&local, &last), 255);
        let mut second_last = local;
        second_last[31] ^= 2;
        assert_eq!(row_index(&local, &second_last), 254);
        let mut first_byte_low = local;
        first_byte_low[0] ^= 1;
        assert_eq!(row_index(&local, &first_byte_low), 7);
        let mut second_byte_high = local;
        second_byte_high[1] ^= 0x80;
        assert_eq!(row_index(&local, &second_byte_high), 8);
        for shared in 0..255 {
            let id = id_with_prefix(&local, shared, 0xc3);
            assert_eq!(row_index(&local, &id), shared, "shared {shared}");
        }
    }

    #[test]
    fn own_id_refused_and_last_bit_in_row_255() {
        let local = [7u8; 32];
        let mut t = RoutingTable::new(local, 20);
        assert_eq!(t.add(local, 1), AddResult::OwnId);
        assert!(t.is_empty());
        assert!(!t.has(&local));
        let mut near = local;
        near[31] ^= 1;
        assert_eq!(t.add(near, 2), AddResult::Added);
        assert_eq!(t.row_of(&near), 255);
        assert_eq!(t.row(255).count(), 1);
        assert_eq!(t.closest(&local, 5), vec![(&near, &2)]);
    }

    #[test]
    fn full_row_refuses_new_but_updates_existing() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local, 3);
        let ids: Vec<[u8; 32]> = (0..5u8)
            .map(|i| {
                let mut id = [0xff; 32];
                id[31] = 10 - i; // all in row 0, added in descending order
                id
            })
            .collect();
        assert_eq!(t.add(ids[0], 0), AddResult::Added);
        assert_eq!(t.add(ids[1], 1), AddResult::Added);
        assert_eq!(t.add(ids[2], 2), AddResult::Added);
        assert_eq!(t.add(ids[3], 3), AddResult::RowFull);
        assert_eq!(t.len(), 3);
        assert!(!t.has(&ids[3]));
        assert_eq!(t.add(ids[1], 11), AddResult::Updated);
        assert_eq!(t.get(&ids[1]), Some(&11));
        assert_eq!(t.len(), 3);
        // stored sorted by id
        let row: Vec<_> = t.row(0).map(|(id, v)| (id[31], *v)).collect();
        assert_eq!(row, vec![(8, 2), (9, 11), (10, 0)]);
        // a different row still has room
        let mut other = [0u8; 32];
        other[0] = 0x40;
        assert_eq!(t.add(other, 9), AddResult::Added);
        assert!(AddResult::Updated.is_stored() && !AddResult::RowFull.is_stored());
    }

    #[test]
    fn remove_and_get_mut() {
        let local = [1u8; 32];
        let mut t = RoutingTable::new(local, 0);
        assert_eq!(t.k(), DEFAULT_K);
        let a = id_with_prefix(&local, 3, 0x11);
        let b = id_with_prefix(&local, 3, 0x22);
        t.add(a, "a".to_string());
        t.add(b, "b".to_string());
        t.get_mut(&a).expect("a").push('!');
        assert_eq!(t.get(&a).map(String::as_str), Some("a!"));
        assert_eq!(t.remove(&a).as_deref(), Some("a!"));
        assert_eq!(t.remove(&a), None);
        assert_eq!(t.remove(&local), None);
        assert_eq!(t.len(), 1);
        assert!(!t.has(&a) && t.has(&b));
        assert_eq!(t.remove(&b).as_deref(), Some("b"));
        assert!(t.is_empty());
        assert!(t.random(u64::MAX).is_none());
        assert!(t.closest(&local, 20).is_empty());
    }

    #[test]
    fn closest_bucket_order() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local, 20);
        // two nodes in each of rows 0, 2, 5, 9
        for (n, shared) in [0usize, 2, 5, 9].into_iter().enumerate() {
            for fill in [0x0f, 0x03] {
                t.add(id_with_prefix(&local, shared, fill), n);
            }
        }
        let rows = |v: Vec<(&[u8; 32], &usize)>| -> Vec<usize> {
            v.into_iter().map(|(id, _)| row_index(&local, id)).collect()
        };
        let target = id_with_prefix(&local, 5, 0xaa);
        assert_eq!(rows(t.closest(&target, 100)), vec![5, 5, 2, 2, 0, 0, 9, 9]);
        assert_eq!(rows(t.closest(&target, 3)), vec![5, 5, 2]);
        assert!(t.closest(&target, 0).is_empty());
        let target = id_with_prefix(&local, 4, 0xaa);
        assert_eq!(rows(t.closest(&target, 5)), vec![2, 2, 0, 0, 5]);
        // toArray order
        assert_eq!(
            rows(t.iter().collect()),
            rows(t.closest(&local, usize::MAX))
        );
        assert_eq!(rows(t.iter().collect()), vec![9, 9, 5, 5, 2, 2, 0, 0]);
        // inside a row: stored (sorted) order
        let r5: Vec<u8> = t.closest(&target, 5)[..2]
            .iter()
            .map(|(id, _)| id[31])
            .collect();
        assert_eq!(r5, vec![0x03, 0x0f]);
    }

    #[test]
    fn random_is_uniform_over_rows_ascending() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local, 20);
        let ids = [
            id_with_prefix(&local, 7, 0x01),
            id_with_prefix(&local, 0, 0x02),
            id_with_prefix(&local, 0, 0x01),
            id_with_prefix(&local, 200, 0x01),
        ];
        for id in ids {
            t.add(id, ());
        }
        let pick = |v: u64| *t.random(v).expect("non-empty").0;
        // order: row 0 (sorted), row 7, row 200
        assert_eq!(pick(0), ids[2]);
        assert_eq!(pick(u64::MAX / 4), ids[2]);
        assert_eq!(pick(1 << 62), ids[1]);
        assert_eq!(pick(1 << 63), ids[0]);
        assert_eq!(pick(u64::MAX), ids[3]);
        let mut counts = [0usize; 4];
        for i in 0..1000u64 {
            let id = pick(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            counts[ids.iter().position(|x| *x == id).expect("known")] += 1;
        }
        assert!(
            counts.iter().all(|&c| (200..300).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn rebuild_moves_rows_and_drops_overflow() {
        let old = [0u8; 32];
        let mut t = RoutingTable::new(old, 2);
        // 2 nodes in row 0 (top bit set) and 2 in row 1 of the old id
        let a = id_with_prefix(&old, 0, 0x10);
        let b = id_with_prefix(&old, 0, 0x20);
        let c = id_with_prefix(&old, 1, 0x10);
        let d = id_with_prefix(&old, 1, 0x20);
        for (i, id) in [a, b, c, d].into_iter().enumerate() {
            assert_eq!(t.add(id, i), AddResult::Added);
        }
        // new id = b: a shares its top bit pattern with b (row >= 1), c and d land in row 0
        let new = b;
        let out = t.rebuild(new);
        assert_eq!(t.local_id(), &new);
        assert_eq!(t.k(), 2);
        assert_eq!(out.own_id, Some((b, 1)));
        assert!(out.row_full.is_empty());
        assert_eq!(t.len(), 3);
        assert!(t.has(&a) && t.has(&c) && t.has(&d) && !t.has(&b));
        assert_eq!(t.row_of(&c), 0);
        assert_eq!(t.row(0).count(), 2);

        // a third node in new row 0 overflows; toArray order decides which one is dropped
        let mut t2 = RoutingTable::new(old, 2);
        let e = id_with_prefix(&old, 2, 0x30); // old row 2
        for (i, id) in [a, c, d, e].into_iter().enumerate() {
            t2.add(id, i);
        }
        let out = t2.rebuild(a);
        // tried in order e (row 2), c, d (row 1), a (own) -> row 0 of `a` gets e and c, d dropped
        assert_eq!(out.own_id, Some((a, 0)));
        assert_eq!(out.row_full, vec![(d, 2)]);
        assert_eq!(t2.len(), 2);
        assert!(t2.has(&e) && t2.has(&c));
        assert_eq!(t2.iter().count(), 2);
        for (_, v) in t2.iter_mut() {
            *v += 100;
        }
        assert_eq!(t2.get(&e), Some(&103));
        assert_eq!((&t2).into_iter().count(), 2);
    }
}
