//! A personal chat's messages as a tree (no I/O): which messages make the branch being shown,
//! the versions (siblings) at each place of it, and where a switch to another version lands.
//! Built from one light read of the session's (id, parent, times); the rows themselves are
//! read only for the page asked for.

use std::collections::{HashMap, HashSet};

use crate::ids::MessageId;

/// One message's place in its chat's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct TreeNode {
    pub id: MessageId,
    /// `None`: a first message (the first question, or another version of it).
    pub parent_id: Option<MessageId>,
    pub created_at: i64,
    /// When it last became the end of the shown branch (its creation when never since).
    pub active_at: i64,
}

/// The tree of one chat.
#[derive(Debug, Default)]
pub struct MessageTree {
    /// Oldest first (created_at, id), so children and siblings keep that order.
    nodes: Vec<TreeNode>,
    index: HashMap<MessageId, usize>,
    /// Per parent (`None`: the first messages), the children's positions in `nodes`.
    children: HashMap<Option<MessageId>, Vec<usize>>,
    /// Per node, the newest `active_at` in its subtree (computed once: switching compares
    /// subtrees level by level).
    activity: Vec<i64>,
}

impl MessageTree {
    /// `nodes` oldest first. A parent that is not among them (deleted before the tree's rules,
    /// or another session's) makes its child a first message.
    pub fn new(nodes: Vec<TreeNode>) -> Self {
        let index: HashMap<MessageId, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        let mut children: HashMap<Option<MessageId>, Vec<usize>> = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            let parent = node.parent_id.filter(|p| index.contains_key(p));
            children.entry(parent).or_default().push(i);
        }
        let mut tree = Self {
            activity: nodes.iter().map(|n| n.active_at).collect(),
            nodes,
            index,
            children,
        };
        tree.activity = tree.subtree_activities();
        tree
    }

    /// Every node's subtree activity, children before parents (an iterative post-order from
    /// the first messages, so a long chat cannot overflow the stack).
    fn subtree_activities(&self) -> Vec<i64> {
        let mut activity = self.activity.clone();
        let mut stack: Vec<(usize, bool)> = self
            .children
            .get(&None)
            .map(|roots| roots.iter().map(|&i| (i, false)).collect())
            .unwrap_or_default();
        while let Some((i, children_done)) = stack.pop() {
            let children = self.children.get(&Some(self.nodes[i].id));
            if children_done {
                let newest = children
                    .into_iter()
                    .flatten()
                    .map(|&c| activity[c])
                    .max()
                    .unwrap_or(i64::MIN);
                activity[i] = activity[i].max(newest);
            } else {
                stack.push((i, true));
                stack.extend(children.into_iter().flatten().map(|&c| (c, false)));
            }
        }
        activity
    }

    /// The tree without `gone` (what a deletion leaves).
    pub fn without(&self, gone: &HashSet<MessageId>) -> Self {
        Self::new(self.nodes.iter().filter(|n| !gone.contains(&n.id)).copied().collect())
    }

    pub fn contains(&self, id: MessageId) -> bool {
        self.index.contains_key(&id)
    }

    pub fn node(&self, id: MessageId) -> Option<&TreeNode> {
        self.index.get(&id).map(|&i| &self.nodes[i])
    }

    /// The parent as the tree has it (a missing parent reads as none).
    pub fn parent(&self, id: MessageId) -> Option<MessageId> {
        self.node(id)?.parent_id.filter(|p| self.contains(*p))
    }

    /// The versions at `id`'s place, oldest first, `id` among them.
    pub fn siblings(&self, id: MessageId) -> Vec<MessageId> {
        if !self.contains(id) {
            return Vec::new();
        }
        self.children
            .get(&self.parent(id))
            .map(|c| c.iter().map(|&i| self.nodes[i].id).collect())
            .unwrap_or_default()
    }

    /// The branch being shown, first message first: up from `current` to the first message,
    /// then on down from it through the most recently shown children (so a `current` that is
    /// not a leaf still ends at one). Without a usable `current`, the most recently shown
    /// branch of the whole chat.
    pub fn branch(&self, current: Option<MessageId>) -> Vec<MessageId> {
        let start = match current.filter(|id| self.contains(*id)) {
            Some(id) => id,
            None => match self.most_recent_child(None) {
                Some(first) => first,
                None => return Vec::new(),
            },
        };
        let mut path = vec![start];
        let mut at = start;
        while let Some(parent) = self.parent(at) {
            // The index guarantees a tree, but a cycle written by hand must not hang a read.
            if path.len() > self.nodes.len() {
                break;
            }
            path.push(parent);
            at = parent;
        }
        path.reverse();
        let mut at = start;
        while let Some(child) = self.most_recent_child(Some(at)) {
            if path.len() > self.nodes.len() {
                break;
            }
            path.push(child);
            at = child;
        }
        path
    }

    /// The end of the most recently shown branch through `id`: what switching to `id` shows.
    pub fn latest_leaf_under(&self, id: MessageId) -> MessageId {
        self.branch(Some(id)).last().copied().unwrap_or(id)
    }

    /// `id` and everything below it.
    pub fn subtree(&self, id: MessageId) -> Vec<MessageId> {
        let mut out = Vec::new();
        if !self.contains(id) {
            return out;
        }
        let mut stack = vec![id];
        while let Some(at) = stack.pop() {
            out.push(at);
            if let Some(children) = self.children.get(&Some(at)) {
                stack.extend(children.iter().map(|&i| self.nodes[i].id));
            }
            if out.len() > self.nodes.len() {
                break;
            }
        }
        out
    }

    /// The child of `parent` (`None`: among the first messages) whose subtree was shown most
    /// recently: the newest `active_at` anywhere below it wins.
    fn most_recent_child(&self, parent: Option<MessageId>) -> Option<MessageId> {
        let children = self.children.get(&parent)?;
        children
            .iter()
            .map(|&i| (self.activity[i], i))
            .max()
            .map(|(_, i)| self.nodes[i].id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, parent: Option<i64>, active_at: i64) -> TreeNode {
        TreeNode {
            id: MessageId(id),
            parent_id: parent.map(MessageId),
            created_at: id,
            active_at,
        }
    }

    fn ids(v: &[i64]) -> Vec<MessageId> {
        v.iter().copied().map(MessageId).collect()
    }

    /// q1 → a2 → q3 → a4, a regenerated answer a5 beside a2, and an edited question q6
    /// (with answer a7) beside q3.
    fn chat() -> MessageTree {
        MessageTree::new(vec![
            node(1, None, 1),
            node(2, Some(1), 2),
            node(3, Some(2), 3),
            node(4, Some(3), 4),
            node(5, Some(1), 5),
            node(6, Some(2), 6),
            node(7, Some(6), 7),
        ])
    }

    #[test]
    fn the_branch_runs_from_the_first_message_through_current_to_a_leaf() {
        let tree = chat();
        assert_eq!(tree.branch(Some(MessageId(4))), ids(&[1, 2, 3, 4]));
        assert_eq!(tree.branch(Some(MessageId(5))), ids(&[1, 5]));
        // Not a leaf: on down through the most recently shown child.
        assert_eq!(tree.branch(Some(MessageId(2))), ids(&[1, 2, 6, 7]));
        // None (or a deleted one): the most recently shown branch.
        assert_eq!(tree.branch(None), ids(&[1, 2, 6, 7]));
        assert_eq!(tree.branch(Some(MessageId(99))), ids(&[1, 2, 6, 7]));
        assert_eq!(MessageTree::new(Vec::new()).branch(None), Vec::<MessageId>::new());
    }

    #[test]
    fn versions_are_the_children_of_the_same_parent_oldest_first() {
        let tree = chat();
        assert_eq!(tree.siblings(MessageId(5)), ids(&[2, 5]));
        assert_eq!(tree.siblings(MessageId(3)), ids(&[3, 6]));
        assert_eq!(tree.siblings(MessageId(1)), ids(&[1]));
        assert_eq!(tree.siblings(MessageId(99)), Vec::<MessageId>::new());
    }

    #[test]
    fn switching_lands_on_the_most_recently_shown_branch_below() {
        let mut nodes = chat().nodes;
        // q3's branch was shown again after q6 was written.
        nodes[3].active_at = 10;
        let tree = MessageTree::new(nodes);
        assert_eq!(tree.latest_leaf_under(MessageId(2)), MessageId(4));
        assert_eq!(tree.latest_leaf_under(MessageId(6)), MessageId(7));
        assert_eq!(tree.latest_leaf_under(MessageId(5)), MessageId(5));
    }

    #[test]
    fn a_subtree_is_a_message_and_everything_below_it() {
        let tree = chat();
        let mut below = tree.subtree(MessageId(2));
        below.sort();
        assert_eq!(below, ids(&[2, 3, 4, 6, 7]));
        assert_eq!(tree.subtree(MessageId(5)), ids(&[5]));
    }

    #[test]
    fn a_parent_that_is_gone_makes_a_first_message() {
        let tree = MessageTree::new(vec![node(2, Some(1), 2), node(3, Some(2), 3)]);
        assert_eq!(tree.branch(None), ids(&[2, 3]));
        assert_eq!(tree.parent(MessageId(2)), None);
    }
}
