//! The pending workloads of the synthetic generator: service Deployments, GPU-sharing
//! inference Jobs, whole-GPU training Jobs and CPU batch Jobs, each sized against one real
//! node (its anchor) so that every pod alone fits on an empty cluster.

use super::shapes::*;
use super::*;

fn gpu_toleration() -> Toleration {
    Toleration {
        key: GPU_TAINT_KEY.into(),
        operator: TolerationOperator::Exists,
        value: String::new(),
        effect: Some(TaintEffect::NoSchedule),
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, table: &[(T, u32)]) -> T {
    table
        .choose_weighted(rng, |e| e.1)
        .expect("non-empty table with positive weights")
        .0
}

fn pick_shape(rng: &mut ChaCha8Rng, table: &[(u64, u64, u32)]) -> (u64, u64) {
    let e = table
        .choose_weighted(rng, |e| e.2)
        .expect("non-empty table with positive weights");
    (e.0, e.1 * MIB)
}

/// Builds the pending workloads, each a `Vec<Pod>` of identical pods (but for names).
pub(super) struct WorkloadGen<'a> {
    cfg: &'a SyntheticConfig,
    nodes: &'a [Node],
    /// What a pending pod may use on each node (allocatable minus the node agent).
    headroom: Vec<Resources>,
    counter: usize,
}

impl<'a> WorkloadGen<'a> {
    pub(super) fn new(cfg: &'a SyntheticConfig, nodes: &'a [Node]) -> Self {
        let agent = node_agent_requests();
        let headroom = nodes
            .iter()
            .map(|n| {
                let mut r = n.allocatable.clone();
                if cfg.node_agents {
                    r.cpu_milli -= agent.cpu_milli;
                    r.memory_bytes -= agent.memory_bytes;
                }
                r
            })
            .collect();
        WorkloadGen {
            cfg,
            nodes,
            headroom,
            counter: 0,
        }
    }

    /// A random schedulable node passing `ok`, or `None`.
    fn anchor(&self, rng: &mut ChaCha8Rng, ok: impl Fn(&Node) -> bool) -> Option<usize> {
        let cands: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].unschedulable && ok(&self.nodes[i]))
            .collect();
        cands.choose(rng).copied()
    }

    fn next_name(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{:03}", self.counter)
    }

    /// Pods of `count` copies of `template`, named `{workload}-{i}`.
    fn expand(workload: &str, template: Pod, count: u32) -> Vec<Pod> {
        (0..count)
            .map(|i| Pod {
                name: format!("{workload}-{i}"),
                ..template.clone()
            })
            .collect()
    }

    fn clamp(&self, anchor: usize, cpu_milli: u64, memory_bytes: u64) -> Resources {
        let h = &self.headroom[anchor];
        Resources::cpu_mem(cpu_milli.min(h.cpu_milli), memory_bytes.min(h.memory_bytes))
    }

    pub(super) fn gpu_workloads(&mut self, rng: &mut ChaCha8Rng) -> Vec<Vec<Pod>> {
        let total: u64 = self
            .nodes
            .iter()
            .map(|n| u64::from(n.gpu_count()) * u64::from(MILLI_PER_GPU))
            .sum();
        let target = (self.cfg.gpu_demand * total as f64) as u64;
        let mut demand = 0u64;
        let mut out = Vec::new();
        while demand < target {
            let made = if rng.gen_bool(self.cfg.share_fraction) {
                self.share_job(rng)
            } else {
                self.training_job(rng)
            };
            let Some((template, count, gang)) = made else {
                break;
            };
            let per_pod = template.gpu.amount.total_milli();
            let count = count.min((target - demand).div_ceil(per_pod) as u32).max(1);
            demand += per_pod * u64::from(count);
            let name = template.labels["job-name"].clone();
            let mut template = template;
            if gang && count > 1 {
                template.gang = Some(Gang {
                    name: name.clone(),
                    min_member: count,
                });
            }
            out.push(Self::expand(&name, template, count));
        }
        out
    }

    fn model_constraint(&self, rng: &mut ChaCha8Rng, anchor: usize) -> Vec<String> {
        if !rng.gen_bool(self.cfg.model_constraint_fraction) {
            return Vec::new();
        }
        let model = self.nodes[anchor].gpu_model().unwrap_or_default();
        match model {
            // Jobs that run on either V100 memory size say so, as openb's gpu_spec does.
            "V100M16" | "V100M32" => vec!["V100M16".into(), "V100M32".into()],
            m => vec![m.to_string()],
        }
    }

    fn job_template(&mut self, prefix: &str, namespace: &str, priority: i32) -> Pod {
        let name = self.next_name(prefix);
        Pod {
            namespace: namespace.into(),
            labels: [
                ("job-name".to_string(), name.clone()),
                ("app".to_string(), prefix.to_string()),
            ]
            .into(),
            priority,
            ..Default::default()
        }
    }

    fn share_job(&mut self, rng: &mut ChaCha8Rng) -> Option<(Pod, u32, bool)> {
        let anchor = self.anchor(rng, |n| n.gpu_count() > 0)?;
        let milli = pick(rng, SHARE_MILLI_TABLE);
        let (cpu, mem) = pick_shape(rng, SHARE_SHAPE_TABLE);
        let mut pod = self.job_template("infer", "ml-infer", PRIORITY_INFERENCE);
        pod.requests = self.clamp(anchor, cpu, mem);
        pod.gpu = GpuRequest {
            amount: GpuAmount::Shared(milli),
            models: self.model_constraint(rng, anchor),
        };
        pod.tolerations = vec![gpu_toleration()];
        let count = rng.gen_range(1..=self.cfg.max_job_pods);
        Some((pod, count, false))
    }

    fn training_job(&mut self, rng: &mut ChaCha8Rng) -> Option<(Pod, u32, bool)> {
        let wanted = if rng.gen_bool(self.cfg.multi_gpu_fraction) {
            pick(rng, MULTI_GPU_TABLE)
        } else {
            1
        };
        // The largest device count a schedulable node offers bounds the request.
        let most = self
            .nodes
            .iter()
            .filter(|n| !n.unschedulable)
            .map(Node::gpu_count)
            .max()
            .unwrap_or(0);
        let devices = wanted.min(most);
        let anchor = self.anchor(rng, |n| devices > 0 && n.gpu_count() >= devices)?;
        let (cpu, mem) = pick_shape(rng, WHOLE_SHAPE_TABLE);
        let mut pod = self.job_template("train", "ml-train", PRIORITY_TRAINING);
        pod.requests = self.clamp(anchor, cpu * u64::from(devices), mem * u64::from(devices));
        pod.gpu = GpuRequest {
            amount: GpuAmount::Whole(devices),
            models: self.model_constraint(rng, anchor),
        };
        pod.tolerations = vec![gpu_toleration()];
        let max_pods = if devices > 1 {
            self.cfg.max_job_pods.min(4)
        } else {
            self.cfg.max_job_pods
        };
        let count = rng.gen_range(1..=max_pods);
        let gang = rng.gen_bool(self.cfg.gang_fraction);
        Some((pod, count, gang))
    }

    pub(super) fn cpu_workloads(&mut self, rng: &mut ChaCha8Rng) -> Vec<Vec<Pod>> {
        let total: u64 = self.nodes.iter().map(|n| n.allocatable.cpu_milli).sum();
        let target = (self.cfg.cpu_demand * total as f64) as u64;
        let mut demand = 0u64;
        let mut out = Vec::new();
        while demand < target {
            let made = if rng.gen_bool(self.cfg.service_fraction) {
                self.service(rng)
            } else {
                self.batch_job(rng)
            };
            let Some((name, template, count)) = made else {
                break;
            };
            let per_pod = template.requests.cpu_milli.max(1);
            demand += per_pod * u64::from(count);
            out.push(Self::expand(&name, template, count));
        }
        out
    }

    fn service(&mut self, rng: &mut ChaCha8Rng) -> Option<(String, Pod, u32)> {
        let has_cpu_pool = self
            .nodes
            .iter()
            .any(|n| !n.unschedulable && n.gpus.is_none());
        let cpu_pool = has_cpu_pool && rng.gen_bool(self.cfg.cpu_pool_selector_fraction);
        let anchor = self.anchor(rng, |n| {
            n.taints.is_empty() && (!cpu_pool || n.gpus.is_none())
        })?;
        let name = self.next_name("svc");
        let (cpu, mem) = pick_shape(rng, SERVICE_SHAPE_TABLE);
        let app: crate::model::Labels = [("app".to_string(), name.clone())].into();
        let selector = LabelSelector {
            match_labels: app.clone(),
            match_expressions: Vec::new(),
        };
        let mut pod = Pod {
            namespace: "web".into(),
            labels: app,
            requests: self.clamp(anchor, cpu, mem),
            priority: PRIORITY_SERVICE,
            ..Default::default()
        };
        if cpu_pool {
            pod.node_selector
                .insert(NODE_POOL_LABEL.into(), "cpu".into());
        }
        if rng.gen_bool(self.cfg.anti_affinity_fraction) {
            pod.pod_anti_affinity.push(PodAffinityTerm {
                selector,
                namespaces: Vec::new(),
                topology_key: HOSTNAME_LABEL.into(),
            });
        } else {
            pod.topology_spread.push(TopologySpreadConstraint {
                max_skew: 1,
                topology_key: ZONE_LABEL.into(),
                when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
                selector,
            });
        }
        let replicas = rng.gen_range(2..=self.cfg.max_replicas);
        Some((name, pod, replicas))
    }

    fn batch_job(&mut self, rng: &mut ChaCha8Rng) -> Option<(String, Pod, u32)> {
        let anchor = self.anchor(rng, |n| n.taints.is_empty())?;
        let (cpu, mem) = pick_shape(rng, BATCH_SHAPE_TABLE);
        let mut pod = self.job_template("batch", "batch", PRIORITY_BATCH);
        let name = pod.labels["job-name"].clone();
        pod.requests = self.clamp(anchor, cpu, mem);
        pod.requests.ephemeral_storage_bytes = 10 * GIB;
        if rng.gen_bool(self.cfg.zone_affinity_fraction) {
            let zone = self.nodes[anchor].labels[ZONE_LABEL].clone();
            pod.required_node_affinity = Some(NodeSelector {
                terms: vec![NodeSelectorTerm {
                    match_expressions: vec![Requirement {
                        key: ZONE_LABEL.into(),
                        operator: Operator::In,
                        values: vec![zone],
                    }],
                    match_fields: Vec::new(),
                }],
            });
        }
        let count = rng.gen_range(1..=self.cfg.max_job_pods);
        Some((name, pod, count))
    }
}
