//! `check_report` without files or network: an in-memory [`Evidence`], the order of the checks, and evidence
//! failures passed on as the Centre's own (not the provider's) errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::collections::BTreeSet;

use common::*;
use vouchsafe_centre::{CentreError, Evidence, ReportContext, ReportVerdict, check_report};
use vouchsafe_orders::{AuthorityKeyring, VerifiedRevocation};
use vouchsafe_release::{SignedRelease, VerifiedRelease};

struct Memory {
    releases: Vec<VerifiedRelease>,
    flagged: BTreeSet<Vec<u8>>,
    broken: bool,
}

impl Evidence for Memory {
    fn releases(&self, line: &str) -> vouchsafe_centre::Result<Vec<VerifiedRelease>> {
        Ok(if line == LINE { self.releases.clone() } else { Vec::new() })
    }
    fn revocations(&self, _: &AuthorityKeyring) -> vouchsafe_centre::Result<Vec<VerifiedRevocation>> {
        Ok(Vec::new())
    }
    fn is_false_positive(&self, primary: &[u8]) -> vouchsafe_centre::Result<bool> {
        if self.broken {
            return Err(CentreError::Database("indicator database unreadable".into()));
        }
        Ok(self.flagged.contains(primary))
    }
}

fn memory(f: &Fixture) -> Memory {
    let bytes = std::fs::read(f.path().join("releases").join(format!("{LINE}-000001.bin"))).unwrap();
    let release = SignedRelease::decode(&bytes).unwrap().verify(&f.centre.public()).unwrap();
    Memory { releases: vec![release], flagged: BTreeSet::new(), broken: false }
}

#[test]
fn checks_run_in_order_and_give_the_verdict() {
    let f = Fixture::new(20);
    let keyring = AuthorityKeyring::new([f.authority.public_key().clone()]).unwrap();
    let services = vec![SERVICE.to_owned()];
    let centre = f.centre.public();
    let ctx = ReportContext { now: now(), services: &services, authorities: &keyring, centre: &centre };
    let mut ev = memory(&f);
    let items = vec![ad(&f.images[0], 0), ad(&f.images[1], 1)];

    let checked = check_report(&f.report(1, &items), &ctx, &ev).unwrap();
    assert_eq!(checked.verdict, ReportVerdict::Forward);
    assert_eq!(checked.items.len(), 2);
    assert_eq!(checked.items[1].primary, primary(&f.images[1]));
    assert_eq!(checked.release_line, LINE);

    // An order failure is reported before an item failure.
    let mut r = f.report(2, &[vec![9; 10]]);
    r.order_hash = [0; 32];
    let e = check_report(&r, &ctx, &ev).unwrap_err().to_string();
    assert!(e.contains("order_hash"), "{e}");
    // The first failing item is named.
    let e = check_report(&f.report(3, &[ad(&f.images[0], 0), vec![1], vec![2]]), &ctx, &ev).unwrap_err().to_string();
    assert!(e.starts_with("item 1:"), "{e}");
    // No release held for the line.
    let none = Memory { releases: Vec::new(), flagged: BTreeSet::new(), broken: false };
    assert!(matches!(check_report(&f.report(4, &items), &ctx, &none), Err(CentreError::Refused(_))));

    ev.flagged.insert(primary(&f.images[1]));
    let checked = check_report(&f.report(5, &items), &ctx, &ev).unwrap();
    let ReportVerdict::FalsePositive { reason } = checked.verdict else { panic!("expected a false positive") };
    assert!(reason.contains(&vouchsafe_centre::indicator_name(&primary(&f.images[1]))), "{reason}");

    // The Centre's own failure stays the Centre's: not a refusal of the report.
    ev.broken = true;
    assert!(matches!(check_report(&f.report(6, &items), &ctx, &ev), Err(CentreError::Database(_))));

    // Another provider's services.
    let others = vec!["other.example".to_owned()];
    let ctx = ReportContext { services: &others, ..ctx };
    let e = check_report(&f.report(7, &items), &ctx, &memory(&f)).unwrap_err().to_string();
    assert!(e.contains("service"), "{e}");
}
