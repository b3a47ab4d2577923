//! docs/GOVERNANCE.md §11 states every counter with the meaning the renderer shows, in the same order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use vouchsafe_render::{COUNTERS, JSON_FORMAT};

#[test]
fn governance_section_11_lists_every_counter_with_its_meaning() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/GOVERNANCE.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let section = doc.split("## 11. Statistics and the transparency report").nth(1).expect("section 11");
    let mut last = 0;
    for (name, description) in COUNTERS {
        let row = format!("| `{name}` | {description} |");
        let at = section.find(&row).unwrap_or_else(|| panic!("section 11 lacks the row {row}"));
        assert!(at > last, "{name} out of order");
        last = at;
    }
    assert!(section.contains(JSON_FORMAT));
}
