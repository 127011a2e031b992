//! The values of the keys: flags, strings, versions, types, paths, upcast steps. Each parser
//! reports a bad value in the [`Ctxt`] and returns `None`, so parsing goes on.

use proc_macro2::TokenTree;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Expr, ExprLit, ExprPath, Ident, Lit, LitInt, LitStr, Path, Token, Type};

use crate::ctxt::Ctxt;
use crate::symbol::Symbol;

use super::VersionLit;

/// The key as written, e.g. `version`.
pub(super) fn key(meta: &ParseNestedMeta<'_>) -> String {
    meta.path.to_token_stream().to_string().replace(' ', "")
}

/// Reports an unknown key, listing the known ones, and skips its value.
pub(super) fn unknown_key(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    attr: Symbol,
    position: &str,
    known: &[Symbol],
) -> syn::Result<()> {
    let known = known
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    cx.error_spanned_by(
        &meta.path,
        format!(
            "unknown `{attr}` attribute `{}`{position}; expected one of {known}",
            key(meta)
        ),
    );
    skip_value(meta)
}

/// Skips `= value` or `(..)` after a key.
pub(super) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// A key that takes no value: `async`, `services`. A value is reported and skipped; the flag
/// still counts as written.
pub(super) fn parse_flag(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<()>> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        let key = key(meta);
        cx.error_spanned_by(
            &meta.path,
            format!("`{key}` takes no value: write `{key}` alone"),
        );
        skip_value(meta)?;
    }
    Ok(Some(()))
}

/// `key = "..."`.
pub(super) fn parse_string(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    example: &str,
) -> syn::Result<Option<LitStr>> {
    let expr: Expr = meta.value()?.parse()?;
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = expr
    {
        return Ok(Some(lit));
    }
    cx.error_spanned_by(
        &expr,
        format!("`{}` takes a string literal, like `{example}`", key(meta)),
    );
    Ok(None)
}

/// `crate = "path::to::annals"`.
pub(super) fn parse_crate_path(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Path>> {
    let Some(lit) = parse_string(cx, meta, "crate = \"::annals\"")? else {
        return Ok(None);
    };
    match lit.parse::<Path>() {
        Ok(path) => Ok(Some(path)),
        Err(_) => {
            cx.error_spanned_by(
                &lit,
                "`crate` must be a path to the annals crate, like `crate = \"::annals\"`",
            );
            Ok(None)
        }
    }
}

/// `version = 2`.
pub(super) fn parse_version(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
) -> syn::Result<Option<VersionLit>> {
    let key = key(meta);
    let expr: Expr = meta.value()?.parse()?;
    let Expr::Lit(ExprLit {
        lit: Lit::Int(lit), ..
    }) = expr
    else {
        cx.error_spanned_by(
            &expr,
            format!("`{key}` takes an integer literal, like `{key} = 2`"),
        );
        return Ok(None);
    };
    Ok(version_lit(cx, &key, lit))
}

pub(super) fn version_lit(cx: &Ctxt, key: &str, lit: LitInt) -> Option<VersionLit> {
    match lit.base10_parse::<u32>() {
        Ok(value) => Some(VersionLit { value, lit }),
        Err(_) => {
            cx.error_spanned_by(&lit, format!("`{key}` must fit in a `u32`"));
            None
        }
    }
}

/// `snapshot_every = 100`.
pub(super) fn parse_snapshot_every(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
) -> syn::Result<Option<(u64, LitInt)>> {
    let expr: Expr = meta.value()?.parse()?;
    let Expr::Lit(ExprLit {
        lit: Lit::Int(lit), ..
    }) = expr
    else {
        cx.error_spanned_by(
            &expr,
            "`snapshot_every` takes an integer literal, like `snapshot_every = 100`",
        );
        return Ok(None);
    };
    match lit.base10_parse::<u64>() {
        Ok(value) => Ok(Some((value, lit))),
        Err(_) => {
            cx.error_spanned_by(&lit, "`snapshot_every` must fit in a `u64`");
            Ok(None)
        }
    }
}

/// `upcast(1 => a, 2 => b)` and `upcast_from(1 => A, 2 => B)`: steps keyed by the version they
/// start from.
pub(super) fn parse_steps<T>(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    target: impl Fn(syn::parse::ParseStream<'_>) -> syn::Result<T>,
) -> syn::Result<Vec<(VersionLit, T)>> {
    let key = key(meta);
    let content;
    syn::parenthesized!(content in meta.input);
    let mut steps = Vec::new();
    while !content.is_empty() {
        let lit: LitInt = content.parse()?;
        content.parse::<Token![=>]>()?;
        let value = target(&content)?;
        if let Some(version) = version_lit(cx, &key, lit) {
            steps.push((version, value));
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(steps)
}

/// `removed("A", "B")`.
pub(super) fn parse_string_list(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<LitStr>> {
    let content;
    syn::parenthesized!(content in meta.input);
    let list = content.parse_terminated(|input| input.parse::<LitStr>(), Token![,])?;
    Ok(list.into_iter().collect())
}

/// `key = Type`.
pub(super) fn parse_type(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    example: &str,
) -> syn::Result<Option<Type>> {
    let input = meta.value()?;
    if input.peek(Lit) {
        let lit: Lit = input.parse()?;
        cx.error_spanned_by(
            &lit,
            format!("`{}` takes a type, like `{example}`", key(meta)),
        );
        return Ok(None);
    }
    input.parse().map(Some)
}

/// `apply = method_name`.
pub(super) fn parse_method_name(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    example: &str,
) -> syn::Result<Option<Ident>> {
    let expr: Expr = meta.value()?.parse()?;
    if let Expr::Path(path) = &expr {
        if path.qself.is_none() {
            if let Some(ident) = path.path.get_ident() {
                return Ok(Some(ident.clone()));
            }
        }
    }
    cx.error_spanned_by(
        &expr,
        format!("`{}` takes a method name, like `{example}`", key(meta)),
    );
    Ok(None)
}

/// `handler = method_name` or `handler = path::to::function`.
pub(super) fn parse_handler(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
) -> syn::Result<Option<ExprPath>> {
    let expr: Expr = meta.value()?.parse()?;
    if let Expr::Path(path) = expr {
        return Ok(Some(path));
    }
    cx.error_spanned_by(
        &expr,
        "`handler` takes a method name or a path to a function, like `handler = close_account` or `handler = BankAccount::close_account`",
    );
    Ok(None)
}
