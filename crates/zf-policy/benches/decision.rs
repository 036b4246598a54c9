//! One policy decision per request: the cost the authorization layer adds to every route.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use zf_domain::{UserId, Username};
use zf_policy::{decide, Authentication, Factors, Operation, Principal, Role};

fn principal(role: Role) -> Principal {
    Principal {
        user_id: UserId::new_random(),
        username: Username::parse("zhangsan").expect("a username"),
        role,
        custom_role: None,
        team: None,
        must_change_password: false,
        authentication: Authentication::MultiFactor { fresh: true },
        factors: Factors {
            totp: true,
            recovery_code: true,
            ..Factors::default()
        },
        token: None,
    }
}

fn decisions(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    let accountant = principal(Role::Accountant);
    g.bench_function("accountant_reads_a_client", |b| {
        b.iter(|| decide(Some(black_box(&accountant)), Operation::ClientRead))
    });
    let sales = principal(Role::Sales);
    g.bench_function("sales_refused_financials", |b| {
        b.iter(|| decide(Some(black_box(&sales)), Operation::FinancialList))
    });
    let everyone: Vec<Principal> = Role::ALL.into_iter().map(principal).collect();
    g.throughput(Throughput::Elements(
        (everyone.len() * Operation::ALL.len()) as u64,
    ));
    g.bench_function("every_role_every_operation", |b| {
        b.iter(|| {
            let mut allowed = 0usize;
            for p in &everyone {
                for op in Operation::ALL {
                    allowed += usize::from(decide(Some(p), op).is_ok());
                }
            }
            allowed
        })
    });
    g.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
