//! Placement order of a batch of pending pods: units of one pod or one gang, higher
//! priorities first; and placing them on a session, each gang all or nothing. Shared by
//! the online policies' batch placement, the scheduler and the look-ahead.

use super::Session;
use crate::model::{Binding, ClusterError, Pod, PodId};
use std::collections::HashMap;

/// Pending pod indices in placement order, grouped: a lone pod or a gang's members;
/// higher priorities first, input order among equals.
pub(crate) fn placement_units(pending: &[Pod]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..pending.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pending[i].priority));
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut gang_unit: HashMap<(&str, &str), usize> = HashMap::new();
    for i in order {
        match &pending[i].gang {
            Some(g) => {
                let key = (pending[i].namespace.as_str(), g.name.as_str());
                match gang_unit.get(&key) {
                    Some(&u) => units[u].push(i),
                    None => {
                        gang_unit.insert(key, units.len());
                        units.push(vec![i]);
                    }
                }
            }
            None => units.push(vec![i]),
        }
    }
    units
}

/// Places `pending` on the session unit by unit (see [`placement_units`]); a gang that
/// gets fewer than its minimum members is taken off again.
pub(crate) fn place_units(
    session: &mut Session<'_>,
    pending: &[Pod],
) -> Result<Vec<Option<(PodId, Binding)>>, ClusterError> {
    let mut placed: Vec<Option<(PodId, Binding)>> = vec![None; pending.len()];
    for unit in placement_units(pending) {
        place_unit(session, pending, &unit, &mut placed)?;
    }
    Ok(placed)
}

/// Places the pods `unit` of `pending` (one pod, or a gang's members) in the given order,
/// recording each in `placed`; a gang that gets fewer than its minimum members is taken
/// off the session again (and out of `placed`).
pub(crate) fn place_unit(
    session: &mut Session<'_>,
    pending: &[Pod],
    unit: &[usize],
    placed: &mut [Option<(PodId, Binding)>],
) -> Result<(), ClusterError> {
    let mut got: Vec<usize> = Vec::new();
    for &i in unit {
        if let Some(pb) = session.place(pending[i].clone())? {
            placed[i] = Some(pb);
            got.push(i);
        }
    }
    let min = pending[unit[0]]
        .gang
        .as_ref()
        .map_or(0, |g| g.min_member as usize);
    if got.len() < min {
        for i in got {
            if let Some((id, _)) = placed[i].take() {
                session.remove(id)?;
            }
        }
    }
    Ok(())
}
