//! Rule decision time in process: a tenant with 1,000,000 devices, 100,000 groups nested five
//! deep and 10,000 targets (Computer, Group and Container), decided for random users and
//! devices. Prints p50, p99 and p99.9 of single decisions and the rate on one core.
//!
//! Knobs: LATCHKEY_BENCH_DEVICES (default 1000000), LATCHKEY_BENCH_GROUPS (100000),
//! LATCHKEY_BENCH_TARGETS (10000), LATCHKEY_BENCH_DECISIONS (1000000).

// A benchmark binary: a failed set-up should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use latchkey_core::ContainerDn;
use latchkey_core::access::{
    AuditSettings, DeviceFacts, Grants, GroupEdge, IndexedGroup, Operation, Reader, RuleIndex, Target, TargetKind,
    UserFacts,
};
use latchkey_core::model::MemberKind;
use time::OffsetDateTime;

/// Groups per nesting level, top first (fractions of the total).
const LEVELS: [f64; 5] = [0.01, 0.04, 0.15, 0.30, 0.50];
const USERS: usize = 50_000;
const SITES: usize = 200;
const DEPARTMENTS: usize = 20;

/// A small deterministic generator for the data set (not for secrets).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn container(site: usize, dept: usize) -> String {
    format!("OU=Dept{dept},OU=Site{site},OU=Computers,DC=corp,DC=example")
}

fn main() {
    let n_devices = knob("LATCHKEY_BENCH_DEVICES", 1_000_000);
    let n_groups = knob("LATCHKEY_BENCH_GROUPS", 100_000);
    let n_targets = knob("LATCHKEY_BENCH_TARGETS", 10_000);
    let n_decisions = knob("LATCHKEY_BENCH_DECISIONS", 1_000_000);
    let mut rng = SplitMix(0x1a7c_4e11);

    // Groups in five levels; each group below the top is a member of one or two groups of the
    // level above, so membership nests five deep.
    let build_start = Instant::now();
    let mut levels: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    for (i, share) in LEVELS.iter().enumerate() {
        let len = if i == LEVELS.len() - 1 { n_groups - start } else { (n_groups as f64 * share) as usize };
        levels.push(start..start + len);
        start += len;
    }
    let groups: Vec<IndexedGroup> =
        (0..n_groups).map(|i| IndexedGroup { id: format!("g{i}"), name: format!("Group {i}") }).collect();
    let mut edges = Vec::new();
    for w in 1..levels.len() {
        let above = levels[w - 1].clone();
        for g in levels[w].clone() {
            for _ in 0..1 + rng.below(2) {
                let parent = above.start + rng.below(above.len());
                edges.push(GroupEdge { child: format!("g{g}"), parent: format!("g{parent}") });
            }
        }
    }
    let bottom = levels[levels.len() - 1].clone();

    let devices: Vec<DeviceFacts> = (0..n_devices)
        .map(|i| {
            let dn = ContainerDn::parse(&container(rng.below(SITES), rng.below(DEPARTMENTS))).unwrap();
            let groups =
                (0..1 + rng.below(3)).map(|_| format!("g{}", bottom.start + rng.below(bottom.len()))).collect();
            DeviceFacts::new(&format!("PC-{i:07}"), Some(&dn), groups)
        })
        .collect();
    let users: Vec<UserFacts> = (0..USERS)
        .map(|i| UserFacts {
            user_id: format!("u{i}"),
            groups: (0..1 + rng.below(4)).map(|_| format!("g{}", rng.below(n_groups))).collect(),
        })
        .collect();

    // 30% Computer, 50% Group, 20% Container targets, each with one to three readers.
    let now = OffsetDateTime::now_utc();
    let targets: Vec<Target> = (0..n_targets)
        .map(|i| {
            let roll = rng.below(10);
            let (kind, name) = if roll < 3 {
                (TargetKind::Computer, format!("PC-{:07}", rng.below(n_devices)))
            } else if roll < 8 {
                (TargetKind::Group, format!("CORP\\Group {}", rng.below(n_groups)))
            } else if rng.below(2) == 0 {
                (TargetKind::Container, format!("OU=Site{},OU=Computers,DC=corp,DC=example", rng.below(SITES)))
            } else {
                (TargetKind::Container, container(rng.below(SITES), rng.below(DEPARTMENTS)))
            };
            let readers = (0..1 + rng.below(3))
                .map(|_| {
                    if rng.below(2) == 0 {
                        let id = format!("u{}", rng.below(USERS));
                        Reader { principal: id.clone(), kind: MemberKind::User, id }
                    } else {
                        let id = format!("g{}", rng.below(n_groups));
                        Reader { principal: id.clone(), kind: MemberKind::Group, id }
                    }
                })
                .collect();
            Target {
                id: format!("t{i}"),
                tenant_id: "bench".into(),
                position: i as i64 + 1,
                kind,
                name,
                expire_after: None,
                grants: Grants::default(),
                audit: AuditSettings::default(),
                enabled: true,
                description: None,
                readers,
                created_at: now,
                updated_at: now,
            }
        })
        .collect();
    let generated = build_start.elapsed();

    let index_start = Instant::now();
    let index = RuleIndex::build(groups, &edges, targets);
    let indexed = index_start.elapsed();
    println!(
        "data: {n_devices} devices, {n_groups} groups ({} edges, 5 levels), {n_targets} targets, {USERS} users; \
         generated in {:.1} s, index built in {:.0} ms",
        edges.len(),
        generated.as_secs_f64(),
        indexed.as_secs_f64() * 1e3
    );

    // Warm up, then time each decision on its own.
    let mut allowed = 0usize;
    let mut matched = 0usize;
    for _ in 0..10_000 {
        let d = index.decide(&users[rng.below(USERS)], &devices[rng.below(n_devices)], Operation::ReadPassword);
        allowed += usize::from(d.allowed());
    }
    let mut samples = Vec::with_capacity(n_decisions);
    let run_start = Instant::now();
    for _ in 0..n_decisions {
        let user = &users[rng.below(USERS)];
        let device = &devices[rng.below(n_devices)];
        let t = Instant::now();
        let d = index.decide(user, device, Operation::ReadPassword);
        samples.push(t.elapsed().as_nanos() as u64);
        allowed += usize::from(d.allowed());
        matched += usize::from(d.matched.is_some());
    }
    let total = run_start.elapsed();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)] as f64 / 1e3;
    println!(
        "decisions: {n_decisions} in {:.2} s ({:.0}/s on one core); {:.1}% matched a target, {} allowed",
        total.as_secs_f64(),
        n_decisions as f64 / total.as_secs_f64(),
        matched as f64 * 100.0 / n_decisions as f64,
        allowed
    );
    println!(
        "latency: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs (target p99 <= 20 µs)",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
}
