//! Rules over a whole input that no single attribute can check: unique stored names across
//! variants, aliases and removed types; versions that count from 1; upcast chains without gaps
//! that end at the current version; snapshot settings that make sense together.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use quote::ToTokens;

use crate::ast::{AggregateStruct, EventEnum, EventVariant, StepKind};
use crate::ctxt::Ctxt;

/// What a stored type name is already taken by.
enum Owner<'a> {
    Name(&'a syn::Ident),
    Alias(&'a syn::Ident),
    Removed,
}

impl std::fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Name(variant) => write!(f, "variant `{variant}` is already stored under it"),
            Owner::Alias(variant) => write!(f, "it is already an alias of variant `{variant}`"),
            Owner::Removed => f.write_str("it is already declared removed"),
        }
    }
}

pub(crate) fn event_enum(cx: &Ctxt, input: &EventEnum<'_>) {
    let Some(variants) = &input.variants else {
        return;
    };
    let mut names: HashMap<String, Owner<'_>> = HashMap::new();
    for variant in variants {
        let at = variant.name_tokens();
        claim(
            cx,
            &mut names,
            variant.name.clone(),
            Owner::Name(variant.ident),
            &at,
            "name",
        );
    }
    // Aliases and removed names after every variant's own name, so a clash is reported on the
    // alias or the removed name, whatever the order of the variants.
    for variant in variants {
        for alias in &variant.aliases {
            claim(
                cx,
                &mut names,
                alias.value(),
                Owner::Alias(variant.ident),
                alias,
                "alias",
            );
        }
    }
    for removed in &input.removed {
        claim(
            cx,
            &mut names,
            removed.value(),
            Owner::Removed,
            removed,
            "removed",
        );
    }
    for variant in variants {
        version_and_chain(cx, variant);
    }
}

/// Records that `name` is stored for `owner`, or reports the clash on `at`.
fn claim<'a>(
    cx: &Ctxt,
    names: &mut HashMap<String, Owner<'a>>,
    name: String,
    owner: Owner<'a>,
    at: &dyn ToTokens,
    what: &str,
) {
    if name.is_empty() {
        cx.error_spanned_by(at, format!("`{what}` must not be empty"));
        return;
    }
    match names.get(&name) {
        Some(first) => cx.error_spanned_by(at, format!("duplicate event name `{name}`: {first}")),
        None => {
            names.insert(name, owner);
        }
    }
}

/// The current version counts from 1, and the upcast steps lead from the oldest upcast version
/// to the current one, one version at a time: JSON steps first, typed steps last.
fn version_and_chain(cx: &Ctxt, variant: &EventVariant<'_>) {
    if let Some(lit) = &variant.version_lit {
        if variant.version == 0 {
            cx.error_spanned_by(
                lit,
                "`version` must be 1 or greater: schema versions count from 1",
            );
            return;
        }
    }
    let current = variant.version;
    let mut steps: HashMap<u32, &crate::ast::Step> = HashMap::new();
    for step in &variant.steps {
        if step.from == 0 {
            cx.error_spanned_by(
                &step.from_lit,
                "an upcast from version 0 is impossible: schema versions count from 1",
            );
        } else if step.from >= current {
            cx.error_spanned_by(
                &step.from_lit,
                format!(
                    "an upcast from version {} must start below the current version {current}; raise `version` or remove the step",
                    step.from
                ),
            );
        } else if let Entry::Vacant(slot) = steps.entry(step.from) {
            slot.insert(step);
        } else {
            cx.error_spanned_by(
                &step.from_lit,
                format!("duplicate upcast step from version {}", step.from),
            );
        }
    }
    let Some(&oldest) = steps.keys().min() else {
        return;
    };
    for from in oldest..current {
        match steps.get(&from) {
            Some(step) => {
                let typed = matches!(step.kind, StepKind::Typed(_));
                let next_json = matches!(
                    steps.get(&(from + 1)).map(|s| &s.kind),
                    Some(StepKind::Json(_))
                );
                if typed && next_json {
                    cx.error_spanned_by(
                        &step.from_lit,
                        format!(
                            "the typed upcast from version {from} is followed by a JSON upcast from version {}: typed steps (`upcast_from`) must come after every JSON step (`upcast`)",
                            from + 1
                        ),
                    );
                }
            }
            None => {
                let before = steps.get(&(from - 1)).map(|step| &step.from_lit);
                let message = format!(
                    "gap in the upcast chain: no step from version {from} to {}, so stored versions below {} cannot reach the current version {current}",
                    from + 1,
                    from + 1
                );
                match before {
                    Some(lit) => cx.error_spanned_by(lit, message),
                    None => cx.error_spanned_by(variant.ident, message),
                }
                return;
            }
        }
    }
}

pub(crate) fn aggregate_struct(cx: &Ctxt, input: &AggregateStruct<'_>) {
    if let Some(lit) = &input.name_lit {
        if input.name.is_empty() {
            cx.error_spanned_by(lit, "`name` must not be empty");
        }
    }
    if let Some((0, lit)) = &input.snapshot_every {
        cx.error_spanned_by(
            lit,
            "`snapshot_every` must be 1 or greater; leave it out to take no snapshots",
        );
    }
    if let Some(version) = &input.snapshot_version {
        if version.value == 0 {
            cx.error_spanned_by(
                &version.lit,
                "`snapshot_version` must be 1 or greater: snapshot versions count from 1",
            );
        } else if input.snapshot_every.is_none() {
            cx.error_spanned_by(
                &version.lit,
                "`snapshot_version` has no effect without `snapshot_every`, which turns snapshots on",
            );
        }
    }
}
