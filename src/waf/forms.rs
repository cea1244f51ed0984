//! A request value's transformed forms, shared within a transaction.
//!
//! CRS's ~200 rules name a few dozen distinct `t:` chains, and most chains start alike
//! (`t:utf8toUnicode,t:urlDecodeUni,...`). The chains of a rule set form a trie; a value's
//! form at a trie node is its parent's form with one more transformation, so a shared prefix
//! is computed once per value, not once per chain.

use super::program::{Collection, Transform};
use super::transform::{apply, classes as classes_of, triggers};
use std::collections::HashMap;
use std::rc::Rc;

/// A node of the transformation trie; [`ROOT`] is the untransformed value.
pub(crate) type Node = u16;

/// The untransformed value.
pub(crate) const ROOT: Node = Node::MAX;

/// Every transformation chain of a rule set, as a trie of (parent, transformation) nodes.
#[derive(Default)]
pub(crate) struct Chains {
    nodes: Vec<(Node, Transform)>,
    /// Per node: the byte classes that trigger a transformation on its path from the root.
    triggers: Vec<u16>,
    /// Per node: ROOT and the nodes from the first transformation to it.
    paths: Vec<Box<[Node]>>,
    index: HashMap<(Node, Transform), Node>,
}

impl Chains {
    /// The node that ends `transforms` (ROOT for none), adding what is missing.
    pub(crate) fn node(&mut self, transforms: &[Transform]) -> Node {
        let mut cur = ROOT;
        for t in transforms {
            let next = self.nodes.len() as Node;
            cur = *self.index.entry((cur, *t)).or_insert_with(|| {
                let above = self.triggers.get(cur as usize).copied().unwrap_or(0);
                let mut path = self
                    .paths
                    .get(cur as usize)
                    .map_or(vec![ROOT], |p| p.to_vec());
                path.push(next);
                self.nodes.push((cur, *t));
                self.triggers.push(above | triggers(*t));
                self.paths.push(path.into());
                next
            });
        }
        cur
    }

    /// The untransformed value's node and every node to `node`, in order: the forms
    /// `multiMatch` tests.
    pub(crate) fn path(&self, node: Node) -> &[Node] {
        match self.paths.get(node as usize) {
            Some(p) => p,
            None => &[ROOT],
        }
    }
}

/// A request value's identity: its collection and its index there ([`slot`]).
pub(crate) type Slot = u32;

/// The slot of member `i` of collection `c`.
pub(crate) fn slot(c: Collection, i: usize) -> Slot {
    ((c as u32) << 20) | (i as u32 & 0xF_FFFF)
}

/// Whether a slot's collection is in `set`, a bitset over [`Collection`].
pub(crate) fn in_collections(slot: Slot, set: u64) -> bool {
    set & (1 << ((slot >> 20) % 64)) != 0
}

/// Keyed by (member slot, node). Keys are small integers the engine makes, not attacker-chosen
/// text: a multiplicative hash serves, where SipHash cost more than the lookups it protects.
pub(crate) type SlotMap<V> = HashMap<(Slot, Node), V, std::hash::BuildHasherDefault<SlotHash>>;

#[derive(Default)]
pub(crate) struct SlotHash(u64);

impl std::hash::Hasher for SlotHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A transformed value: the input itself, or a computed form.
pub(crate) enum Tv<'x> {
    Same(&'x [u8]),
    New(Rc<[u8]>),
}

impl std::ops::Deref for Tv<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Tv::Same(b) => b,
            Tv::New(b) => b,
        }
    }
}

/// One value's form at one node: the bytes (`None`: the value unchanged) and the node where
/// they last changed, which names the form for the literal scan: forms equal by construction
/// share one scan.
#[derive(Clone)]
pub(crate) struct Form {
    bytes: Option<Rc<[u8]>>,
    pub(crate) changed_at: Node,
    /// The byte classes of the form's bytes.
    classes: u16,
}

/// Per transaction: each (slot, node) form computed so far.
pub(crate) struct Forms {
    cache: SlotMap<Form>,
}

impl Default for Forms {
    fn default() -> Self {
        // Sized for a typical API request (a hundred values, a dozen forms each that some
        // transformation changes): growing the table step by step cost more than this.
        Forms {
            cache: SlotMap::with_capacity_and_hasher(1024, Default::default()),
        }
    }
}

impl Forms {
    /// Forgets the forms of the collections in `replaced` (a bitset over collections, as
    /// [`Slot`]s number them).
    pub(crate) fn forget(&mut self, replaced: u64) {
        if replaced != 0 {
            self.cache
                .retain(|(slot, _), _| !in_collections(*slot, replaced));
        }
    }

    /// The form of the value `raw` (at `slot`, of byte classes `classes`) at `node`; `steps`
    /// grows by the bytes each transformation read.
    #[allow(
        clippy::too_many_arguments,
        reason = "the transaction's parts a value is read with"
    )]
    pub(crate) fn get<'x>(
        &mut self,
        chains: &Chains,
        steps: &mut u64,
        slot: Slot,
        node: Node,
        raw: &'x [u8],
        classes: u16,
    ) -> (Tv<'x>, Node) {
        let form = self.form(chains, steps, slot, node, raw, classes);
        let tv = match form.bytes {
            Some(b) => Tv::New(b),
            None => Tv::Same(raw),
        };
        (tv, form.changed_at)
    }

    fn form(
        &mut self,
        chains: &Chains,
        steps: &mut u64,
        slot: Slot,
        node: Node,
        raw: &[u8],
        classes: u16,
    ) -> Form {
        // No transformation on the path can change this value: no lookup, no pass over it.
        if node == ROOT || chains.triggers[node as usize] & classes == 0 {
            return Form {
                bytes: None,
                changed_at: ROOT,
                classes,
            };
        }
        if let Some(f) = self.cache.get(&(slot, node)) {
            return f.clone();
        }
        let (parent, t) = chains.nodes[node as usize];
        let base = self.form(chains, steps, slot, parent, raw, classes);
        // The form so far holds none of this transformation's triggers: it passes as it is.
        if triggers(t) & base.classes == 0 {
            self.cache.insert((slot, node), base.clone());
            return base;
        }
        let input: &[u8] = base.bytes.as_deref().unwrap_or(raw);
        *steps += input.len() as u64;
        let form = match apply(t, input) {
            Some(next) => Form {
                classes: classes_of(&next),
                bytes: Some(Rc::from(next)),
                changed_at: node,
            },
            None => base,
        };
        self.cache.insert((slot, node), form.clone());
        form
    }
}

/// A value that has no slot (TX, MATCHED_VAR, a count), transformed without caching.
pub(crate) fn uncached(steps: &mut u64, transforms: &[Transform], raw: &[u8]) -> Option<Vec<u8>> {
    let mut cur: Option<Vec<u8>> = None;
    for t in transforms {
        let input: &[u8] = cur.as_deref().unwrap_or(raw);
        *steps += input.len() as u64;
        if let Some(next) = apply(*t, input) {
            cur = Some(next);
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::transform::classes;
    use Transform::*;

    /// Every form the trie gives, with its shortcuts (a chain the value holds no trigger of,
    /// a transformation passed), equals the chain applied step by step.
    #[test]
    fn forms_equal_their_chain_applied() {
        let chains_used: [&[Transform]; 7] = [
            &[
                Utf8ToUnicode,
                UrlDecodeUni,
                HtmlEntityDecode,
                JsDecode,
                CssDecode,
                RemoveNulls,
            ],
            &[Utf8ToUnicode, UrlDecodeUni, RemoveNulls],
            &[
                UrlDecodeUni,
                JsDecode,
                RemoveWhitespace,
                Base64Decode,
                UrlDecodeUni,
                JsDecode,
            ],
            &[CmdLine, NormalizePath],
            &[UrlDecodeUni, Lowercase, ReplaceComments, CompressWhitespace],
            &[Lowercase],
            &[],
        ];
        let mut chains = Chains::default();
        let nodes: Vec<Node> = chains_used.iter().map(|c| chains.node(c)).collect();
        let mut rng = fastrand::Rng::with_seed(3);
        let alphabet = b"aZ09 %+&#;\\/.*-<'\"xu\x00\xc3\xa9=";
        let mut forms = Forms::default();
        let mut steps = 0;
        for slot in 0..3000u32 {
            let len = rng.usize(0..20);
            let raw: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let c = classes(&raw);
            // Every chain on the same slot, in a random order, so that prefixes are shared.
            let mut order: Vec<usize> = (0..chains_used.len()).collect();
            rng.shuffle(&mut order);
            for k in order {
                let (form, _) = forms.get(&chains, &mut steps, slot, nodes[k], &raw, c);
                let want = uncached(&mut steps, chains_used[k], &raw).unwrap_or(raw.clone());
                assert_eq!(&*form, &want[..], "{:?} of {raw:?}", chains_used[k]);
            }
        }
        // multiMatch's path starts at the untransformed value.
        assert_eq!(chains.path(nodes[0])[0], ROOT);
        assert_eq!(chains.path(nodes[0]).len(), 7);
    }
}
