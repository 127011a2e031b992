//! Rules over a whole input that no single attribute can check: unique stored names, versions
//! that count from 1, non-empty names.
//!
//! Stored names are checked in one namespace, so the aliases of a later issue join the same map.

use std::collections::HashMap;

use crate::ast::{AggregateStruct, EventEnum};
use crate::ctxt::Ctxt;

pub(crate) fn event_enum(cx: &Ctxt, input: &EventEnum<'_>) {
    let Some(variants) = &input.variants else {
        return;
    };
    let mut names: HashMap<&str, &syn::Ident> = HashMap::new();
    for variant in variants {
        if let Some(lit) = &variant.version_lit {
            if variant.version == 0 {
                cx.error_spanned_by(
                    lit,
                    "`version` must be 1 or greater: schema versions count from 1",
                );
            }
        }
        if variant.name.is_empty() {
            // Only a written name can be empty; it is reported once, not as a duplicate too.
            cx.error_spanned_by(variant.name_tokens(), "`name` must not be empty");
            continue;
        }
        match names.get(variant.name.as_str()) {
            Some(first) => cx.error_spanned_by(
                variant.name_tokens(),
                format!(
                    "duplicate event name `{}`: variant `{first}` is already stored under it",
                    variant.name
                ),
            ),
            None => {
                names.insert(&variant.name, variant.ident);
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
}
