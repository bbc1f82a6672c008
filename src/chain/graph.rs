//! Cycle check over the chain graph: schedule → (its hops) → the schedules the named chains
//! point at. A cycle is allowed only when a schedule on it sets `allow_loops`.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

/// Edges between schedules, and which schedules allow loops.
#[derive(Debug, Default)]
pub struct ChainGraph {
    edges: HashMap<Uuid, Vec<Uuid>>,
    allow_loops: HashSet<Uuid>,
}

impl ChainGraph {
    pub fn add_schedule(&mut self, id: Uuid, allow_loops: bool) {
        self.edges.entry(id).or_default();
        if allow_loops {
            self.allow_loops.insert(id);
        } else {
            self.allow_loops.remove(&id);
        }
    }

    pub fn add_edge(&mut self, from: Uuid, to: Uuid) {
        self.edges.entry(from).or_default().push(to);
        self.edges.entry(to).or_default();
    }

    /// Replaces every edge leaving `from` (a schedule about to be saved).
    pub fn set_edges(&mut self, from: Uuid, to: Vec<Uuid>) {
        for t in &to {
            self.edges.entry(*t).or_default();
        }
        self.edges.insert(from, to);
    }

    /// A cycle none of whose schedules allows loops, as the list of schedules on it.
    pub fn forbidden_cycle(&self) -> Option<Vec<Uuid>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut marks: HashMap<Uuid, Mark> = HashMap::new();
        let mut nodes: Vec<&Uuid> = self.edges.keys().collect();
        nodes.sort();
        for &start in nodes {
            if self.allow_loops.contains(&start) || marks.contains_key(&start) {
                continue;
            }
            // Iterative DFS keeping the path, so a cycle can be reported.
            let mut path: Vec<(Uuid, usize)> = vec![(start, 0)];
            marks.insert(start, Mark::Open);
            while let Some((node, next)) = path.last().copied() {
                let targets = self.edges.get(&node).map(Vec::as_slice).unwrap_or(&[]);
                if next >= targets.len() {
                    marks.insert(node, Mark::Done);
                    path.pop();
                    continue;
                }
                if let Some(last) = path.last_mut() {
                    last.1 += 1;
                }
                let t = targets[next];
                if self.allow_loops.contains(&t) {
                    continue;
                }
                match marks.get(&t) {
                    Some(Mark::Open) => {
                        let from = path.iter().position(|(n, _)| *n == t).unwrap_or(0);
                        return Some(path[from..].iter().map(|(n, _)| *n).collect());
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(t, Mark::Open);
                        path.push((t, 0));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|i| Uuid::from_u128(i as u128 + 1)).collect()
    }

    #[test]
    fn a_chain_without_a_cycle_passes() {
        let v = ids(3);
        let mut g = ChainGraph::default();
        g.add_edge(v[0], v[1]);
        g.add_edge(v[1], v[2]);
        g.add_edge(v[0], v[2]);
        assert_eq!(g.forbidden_cycle(), None);
    }

    #[test]
    fn a_cycle_is_found_and_named() {
        let v = ids(3);
        let mut g = ChainGraph::default();
        g.add_edge(v[0], v[1]);
        g.add_edge(v[1], v[2]);
        g.add_edge(v[2], v[0]);
        let cycle = g.forbidden_cycle().unwrap();
        assert_eq!(cycle.len(), 3);
        let mut self_loop = ChainGraph::default();
        self_loop.add_edge(v[0], v[0]);
        assert_eq!(self_loop.forbidden_cycle(), Some(vec![v[0]]));
    }

    #[test]
    fn allow_loops_on_the_cycle_permits_it() {
        let v = ids(2);
        let mut g = ChainGraph::default();
        g.add_edge(v[0], v[1]);
        g.add_edge(v[1], v[0]);
        g.add_schedule(v[1], true);
        assert_eq!(g.forbidden_cycle(), None);
    }
}
