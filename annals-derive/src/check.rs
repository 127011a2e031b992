//! Rules over a whole input that no single attribute can check: keys that must be written in
//! one of the input's attributes; unique stored names across variants, aliases and removed
//! types; versions that count from 1; upcast chains without gaps that end at the current
//! version; snapshot settings that make sense together.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use quote::ToTokens;

use crate::ast::{AggregateStruct, EventEnum, EventVariant, Step, StepKind};
use crate::attr::{Attr, Value};
use crate::ctxt::Ctxt;

/// The value of a key the derive cannot do without, such as `#[command(aggregate = ..)]`.
/// Missing from every attribute of the input, it is reported on the input's name; written with
/// a bad value, it was reported where it is written and is not reported again here.
pub(crate) fn required<T>(cx: &Ctxt, attr: Attr<T>, input: &syn::Ident, what: &str) -> Option<T> {
    let (name, key) = attr.names();
    match attr.into_value() {
        Value::Set(value) => Some(value),
        Value::Reported => None,
        Value::Absent => {
            cx.error_spanned_by(
                input,
                format!("`#[{name}({key} = ..)]` is required: it names {what}"),
            );
            None
        }
    }
}

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
    let variants = &input.variants;
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
    let mut steps: HashMap<u32, &Step> = HashMap::new();
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
    // Each step is followed by the step from the next version, up to the current version: the
    // first step without one is the end of a gap, reported on that step.
    let mut chain: Vec<&Step> = steps.into_values().collect();
    chain.sort_by_key(|step| step.from);
    for (i, step) in chain.iter().enumerate() {
        let to = step.from + 1;
        match chain.get(i + 1) {
            _ if to == current => {}
            Some(next) if next.from == to => {
                if matches!(step.kind, StepKind::Typed(_)) && matches!(next.kind, StepKind::Json(_))
                {
                    cx.error_spanned_by(
                        &step.from_lit,
                        format!(
                            "the typed upcast from version {} is followed by a JSON upcast from version {to}: typed steps (`upcast_from`) must come after every JSON step (`upcast`)",
                            step.from
                        ),
                    );
                }
            }
            _ => {
                cx.error_spanned_by(
                    &step.from_lit,
                    format!(
                        "gap in the upcast chain: no step from version {to} to {}, so stored versions below {} cannot reach the current version {current}",
                        to + 1,
                        to + 1
                    ),
                );
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
