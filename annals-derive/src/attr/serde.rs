//! The few `#[serde(..)]` keys that change how an event enum is stored: the derive reads a
//! variant's serde name and rejects the representations it cannot store.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Token};

use crate::ctxt::Ctxt;
use crate::symbol::{
    CONTENT, OTHER, RENAME, RENAME_ALL, SERDE, SKIP, SKIP_DESERIALIZING, SKIP_SERIALIZING, TAG,
    UNTAGGED,
};

use super::value::{key, skip_value};

/// The `#[serde(..)]` keys of an event variant that the derive needs.
pub(crate) struct SerdeVariantAttrs {
    /// `#[serde(rename = "..")]`: the name serde reads and writes for the variant.
    pub(crate) rename: Option<LitStr>,
}

/// Reads `#[serde(..)]` on the event enum, rejecting the representations that would store the
/// type name inside the body. Every other serde key is serde's business and is skipped.
pub(crate) fn serde_enum_attrs(cx: &Ctxt, attrs: &[Attribute]) {
    for_each_serde_key(attrs, |meta| {
        if meta.path == TAG || meta.path == CONTENT || meta.path == UNTAGGED {
            // #[serde(tag = "type")], #[serde(content = "data")], #[serde(untagged)]
            cx.error_spanned_by(
                &meta.path,
                format!(
                    "`#[serde({})]` is not supported on an event enum: the event type name is stored beside the body, not in it; use `#[event(name = ..)]` on a variant to set it",
                    key(meta)
                ),
            );
        } else if meta.path == RENAME_ALL {
            // #[serde(rename_all = "snake_case")]
            cx.error_spanned_by(
                &meta.path,
                "`#[serde(rename_all)]` is not supported on an event enum: stored type names are set per variant with `#[event(name = ..)]`",
            );
        }
        skip_value(meta)
    });
}

/// Reads `#[serde(..)]` on an event variant: its serde name, and the keys that would make the
/// variant impossible to store or to load.
pub(crate) fn serde_variant_attrs(cx: &Ctxt, attrs: &[Attribute]) -> SerdeVariantAttrs {
    let mut rename = None;
    for_each_serde_key(attrs, |meta| {
        if meta.path == RENAME {
            if meta.input.peek(Token![=]) {
                // #[serde(rename = "opened")]
                if let Expr::Lit(ExprLit {
                    lit: Lit::Str(lit), ..
                }) = meta.value()?.parse::<Expr>()?
                {
                    rename = Some(lit);
                }
                return Ok(());
            }
            // #[serde(rename(serialize = "a", deserialize = "b"))]
            cx.error_spanned_by(
                &meta.path,
                "`#[serde(rename(..))]` with separate names is not supported on an event variant: a stored body must be written and read under one name; use `#[serde(rename = \"..\")]`",
            );
        } else if meta.path == SKIP
            || meta.path == SKIP_SERIALIZING
            || meta.path == SKIP_DESERIALIZING
        {
            // #[serde(skip)], #[serde(skip_serializing)], #[serde(skip_deserializing)]
            cx.error_spanned_by(
                &meta.path,
                format!(
                    "`#[serde({})]` is not supported on an event variant: every event must be stored and loaded again; remove the variant from the event enum instead",
                    key(meta)
                ),
            );
        } else if meta.path == OTHER {
            // #[serde(other)]
            cx.error_spanned_by(
                &meta.path,
                "`#[serde(other)]` is not supported on an event variant: a stored type name no variant has is reported as `DecodeError::UnknownType`",
            );
        } else if meta.path == UNTAGGED {
            // #[serde(untagged)]
            cx.error_spanned_by(
                &meta.path,
                "`#[serde(untagged)]` is not supported on an event variant: the event type name is stored beside the body; use `#[event(name = ..)]` to set it",
            );
        }
        skip_value(meta)
    });
    SerdeVariantAttrs { rename }
}

/// Runs `f` on each key of every `#[serde(..)]` attribute. A serde attribute this crate cannot
/// parse is left for serde_derive to report.
pub(super) fn for_each_serde_key(
    attrs: &[Attribute],
    mut f: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| attr.path() == SERDE) {
        let _ = attr.parse_nested_meta(|meta| f(&meta));
    }
}
