//! Parsing of the helper attributes: `#[event(..)]`, `#[command(..)]`, `#[aggregate(..)]`, and
//! the few `#[serde(..)]` keys that change how an event enum is stored.
//!
//! Each position (enum, variant, struct) has one function with one branch per key. A bad value
//! or an unknown key is recorded in the [`Ctxt`] and parsing goes on with the next key, so all
//! mistakes of one input show up in one build; only a syntax error ends the attribute early.

use proc_macro2::TokenTree;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{
    Attribute, Expr, ExprLit, ExprPath, Fields, Ident, Lit, LitInt, LitStr, Path, Token, Type,
};

use crate::ctxt::Ctxt;

/// One key's value, remembering whether it was already given.
struct Attr<T> {
    attr: &'static str,
    value: Option<T>,
}

impl<T> Attr<T> {
    fn new(attr: &'static str) -> Self {
        Attr { attr, value: None }
    }

    /// Stores the value, or reports a duplicate on the second occurrence's key.
    fn set(&mut self, cx: &Ctxt, meta: &ParseNestedMeta<'_>, value: T) {
        if self.value.is_some() {
            cx.error_spanned_by(
                &meta.path,
                format!("duplicate `{}` attribute `{}`", self.attr, key(meta)),
            );
        } else {
            self.value = Some(value);
        }
    }

    fn get(self) -> Option<T> {
        self.value
    }
}

/// The keys of `#[event(..)]` on the enum.
const EVENT_KEYS: &[&str] = &["apply", "removed", "crate"];
/// The keys of `#[event(..)]` on a variant.
const EVENT_VARIANT_KEYS: &[&str] = &["name", "alias", "version", "upcast", "upcast_from", "apply"];
/// The keys of `#[command(..)]` on the enum.
const COMMAND_KEYS: &[&str] = &["aggregate", "async", "services", "crate"];
/// The keys of `#[command(..)]` on a variant.
const COMMAND_VARIANT_KEYS: &[&str] = &["handler", "async", "services"];
/// The keys of `#[aggregate(..)]` on the struct.
const AGGREGATE_KEYS: &[&str] = &[
    "name",
    "event",
    "command",
    "error",
    "services",
    "snapshot_every",
    "snapshot_version",
    "crate",
];

/// `#[event(..)]` on the event enum.
pub(crate) struct EventAttrs {
    /// The state type that gets `impl Apply<Enum>`.
    pub(crate) apply: Option<Type>,
    /// Type names of events that no longer exist: decoded as "skip this event".
    pub(crate) removed: Vec<LitStr>,
    pub(crate) krate: Option<Path>,
}

/// `#[event(..)]` on one event variant.
pub(crate) struct EventVariantAttrs {
    pub(crate) name: Option<LitStr>,
    /// Former type names, read but never written.
    pub(crate) aliases: Vec<LitStr>,
    pub(crate) version: Option<VersionLit>,
    /// `upcast(1 => path::to::fn, ..)`: JSON upcasters.
    pub(crate) upcast: Vec<(VersionLit, ExprPath)>,
    /// `upcast_from(1 => OpenedV1, ..)`: typed upcasters.
    pub(crate) upcast_from: Vec<(VersionLit, Type)>,
    pub(crate) apply: Option<Ident>,
}

/// A schema version as written, kept so errors can point at it.
pub(crate) struct VersionLit {
    pub(crate) value: u32,
    pub(crate) lit: LitInt,
}

/// `#[command(..)]` on the command enum.
pub(crate) struct CommandAttrs {
    pub(crate) aggregate: Option<Type>,
    pub(crate) is_async: bool,
    pub(crate) services: bool,
    pub(crate) krate: Option<Path>,
    /// Every key written, valid or not.
    pub(crate) keys: Vec<String>,
}

/// `#[command(..)]` on one command variant.
pub(crate) struct CommandVariantAttrs {
    pub(crate) handler: Option<ExprPath>,
    pub(crate) is_async: bool,
    pub(crate) services: bool,
}

/// `#[aggregate(..)]` on the state struct.
pub(crate) struct AggregateAttrs {
    pub(crate) name: Option<LitStr>,
    pub(crate) snapshot_every: Option<(u64, LitInt)>,
    pub(crate) snapshot_version: Option<VersionLit>,
    pub(crate) event: Option<Type>,
    pub(crate) command: Option<Type>,
    pub(crate) error: Option<Type>,
    pub(crate) services: Option<Type>,
    pub(crate) krate: Option<Path>,
    /// Every key written, valid or not.
    pub(crate) keys: Vec<String>,
}

/// The `#[serde(..)]` keys of an event variant that the derive needs.
pub(crate) struct SerdeVariantAttrs {
    /// `#[serde(rename = "..")]`: the name serde reads and writes for the variant.
    pub(crate) rename: Option<LitStr>,
}

pub(crate) fn event_attrs(cx: &Ctxt, attrs: &[Attribute]) -> EventAttrs {
    let mut apply = Attr::new("event");
    let mut removed = Attr::new("event");
    let mut krate = Attr::new("event");
    for_each_key(cx, attrs, "event", |meta| {
        if meta.path.is_ident("apply") {
            // #[event(apply = BankAccount)]
            if let Some(ty) = parse_type(cx, meta, "apply = BankAccount")? {
                apply.set(cx, meta, ty);
            }
        } else if meta.path.is_ident("removed") {
            // #[event(removed("AuditPinged", "LegacyFlag"))]
            let names = parse_string_list(meta)?;
            removed.set(cx, meta, names);
        } else if meta.path.is_ident("crate") {
            // #[event(crate = "::annals")]
            if let Some(path) = parse_crate_path(cx, meta)? {
                krate.set(cx, meta, path);
            }
        } else {
            unknown_key(cx, meta, "event", "", EVENT_KEYS)?;
        }
        Ok(())
    });
    EventAttrs {
        apply: apply.get(),
        removed: removed.get().unwrap_or_default(),
        krate: krate.get(),
    }
}

pub(crate) fn event_variant_attrs(cx: &Ctxt, attrs: &[Attribute]) -> EventVariantAttrs {
    let mut name = Attr::new("event");
    let mut aliases = Vec::new();
    let mut version = Attr::new("event");
    let mut upcast = Attr::new("event");
    let mut upcast_from = Attr::new("event");
    let mut apply = Attr::new("event");
    for_each_key(cx, attrs, "event", |meta| {
        if meta.path.is_ident("name") {
            // #[event(name = "account.opened")]
            if let Some(lit) = parse_string(cx, meta, "name = \"account.opened\"")? {
                name.set(cx, meta, lit);
            }
        } else if meta.path.is_ident("alias") {
            // #[event(alias = "AccountOpened")], repeatable
            if let Some(lit) = parse_string(cx, meta, "alias = \"AccountOpened\"")? {
                aliases.push(lit);
            }
        } else if meta.path.is_ident("version") {
            // #[event(version = 2)]
            if let Some(lit) = parse_version(cx, meta)? {
                version.set(cx, meta, lit);
            }
        } else if meta.path.is_ident("upcast") {
            // #[event(upcast(1 => upcast::opened_v1, 2 => upcast::opened_v2))]
            let steps = parse_steps(cx, meta, |input| input.parse::<ExprPath>())?;
            upcast.set(cx, meta, steps);
        } else if meta.path.is_ident("upcast_from") {
            // #[event(upcast_from(1 => OpenedV1, 2 => OpenedV2))]
            let steps = parse_steps(cx, meta, |input| input.parse::<Type>())?;
            upcast_from.set(cx, meta, steps);
        } else if meta.path.is_ident("apply") {
            // #[event(apply = on_opened)]
            if let Some(ident) = parse_method_name(cx, meta, "apply = on_opened")? {
                apply.set(cx, meta, ident);
            }
        } else {
            unknown_key(cx, meta, "event", " on a variant", EVENT_VARIANT_KEYS)?;
        }
        Ok(())
    });
    EventVariantAttrs {
        name: name.get(),
        aliases,
        version: version.get(),
        upcast: upcast.get().unwrap_or_default(),
        upcast_from: upcast_from.get().unwrap_or_default(),
        apply: apply.get(),
    }
}

pub(crate) fn command_attrs(cx: &Ctxt, attrs: &[Attribute]) -> CommandAttrs {
    let mut aggregate = Attr::new("command");
    let mut is_async = Attr::new("command");
    let mut services = Attr::new("command");
    let mut krate = Attr::new("command");
    let keys = for_each_key(cx, attrs, "command", |meta| {
        if meta.path.is_ident("aggregate") {
            // #[command(aggregate = BankAccount)]
            if let Some(ty) = parse_type(cx, meta, "aggregate = BankAccount")? {
                aggregate.set(cx, meta, ty);
            }
        } else if meta.path.is_ident("async") {
            // #[command(async)]
            parse_flag(cx, meta)?;
            is_async.set(cx, meta, ());
        } else if meta.path.is_ident("services") {
            // #[command(services)]
            parse_flag(cx, meta)?;
            services.set(cx, meta, ());
        } else if meta.path.is_ident("crate") {
            // #[command(crate = "::annals")]
            if let Some(path) = parse_crate_path(cx, meta)? {
                krate.set(cx, meta, path);
            }
        } else {
            unknown_key(cx, meta, "command", "", COMMAND_KEYS)?;
        }
        Ok(())
    });
    CommandAttrs {
        aggregate: aggregate.get(),
        is_async: is_async.get().is_some(),
        services: services.get().is_some(),
        krate: krate.get(),
        keys,
    }
}

pub(crate) fn command_variant_attrs(cx: &Ctxt, attrs: &[Attribute]) -> CommandVariantAttrs {
    let mut handler = Attr::new("command");
    let mut is_async = Attr::new("command");
    let mut services = Attr::new("command");
    for_each_key(cx, attrs, "command", |meta| {
        if meta.path.is_ident("handler") {
            // #[command(handler = close_account)] or #[command(handler = handlers::close)]
            if let Some(path) = parse_handler(cx, meta)? {
                handler.set(cx, meta, path);
            }
        } else if meta.path.is_ident("async") {
            // #[command(async)]
            parse_flag(cx, meta)?;
            is_async.set(cx, meta, ());
        } else if meta.path.is_ident("services") {
            // #[command(services)]
            parse_flag(cx, meta)?;
            services.set(cx, meta, ());
        } else {
            unknown_key(cx, meta, "command", " on a variant", COMMAND_VARIANT_KEYS)?;
        }
        Ok(())
    });
    CommandVariantAttrs {
        handler: handler.get(),
        is_async: is_async.get().is_some(),
        services: services.get().is_some(),
    }
}

pub(crate) fn aggregate_attrs(cx: &Ctxt, attrs: &[Attribute]) -> AggregateAttrs {
    let mut name = Attr::new("aggregate");
    let mut snapshot_every = Attr::new("aggregate");
    let mut snapshot_version = Attr::new("aggregate");
    let mut event = Attr::new("aggregate");
    let mut command = Attr::new("aggregate");
    let mut error = Attr::new("aggregate");
    let mut services = Attr::new("aggregate");
    let mut krate = Attr::new("aggregate");
    let keys = for_each_key(cx, attrs, "aggregate", |meta| {
        if meta.path.is_ident("name") {
            // #[aggregate(name = "bank-account")]
            if let Some(lit) = parse_string(cx, meta, "name = \"bank-account\"")? {
                name.set(cx, meta, lit);
            }
        } else if meta.path.is_ident("snapshot_every") {
            // #[aggregate(snapshot_every = 100)]
            if let Some(every) = parse_snapshot_every(cx, meta)? {
                snapshot_every.set(cx, meta, every);
            }
        } else if meta.path.is_ident("snapshot_version") {
            // #[aggregate(snapshot_version = 2)]
            if let Some(lit) = parse_version(cx, meta)? {
                snapshot_version.set(cx, meta, lit);
            }
        } else if meta.path.is_ident("event") {
            // #[aggregate(event = AccountEvent)]
            if let Some(ty) = parse_type(cx, meta, "event = AccountEvent")? {
                event.set(cx, meta, ty);
            }
        } else if meta.path.is_ident("command") {
            // #[aggregate(command = AccountCommand)]
            if let Some(ty) = parse_type(cx, meta, "command = AccountCommand")? {
                command.set(cx, meta, ty);
            }
        } else if meta.path.is_ident("error") {
            // #[aggregate(error = AccountError)]
            if let Some(ty) = parse_type(cx, meta, "error = AccountError")? {
                error.set(cx, meta, ty);
            }
        } else if meta.path.is_ident("services") {
            // #[aggregate(services = Clock)]
            if let Some(ty) = parse_type(cx, meta, "services = Clock")? {
                services.set(cx, meta, ty);
            }
        } else if meta.path.is_ident("crate") {
            // #[aggregate(crate = "::annals")]
            if let Some(path) = parse_crate_path(cx, meta)? {
                krate.set(cx, meta, path);
            }
        } else {
            unknown_key(cx, meta, "aggregate", "", AGGREGATE_KEYS)?;
        }
        Ok(())
    });
    AggregateAttrs {
        name: name.get(),
        snapshot_every: snapshot_every.get(),
        snapshot_version: snapshot_version.get(),
        event: event.get(),
        command: command.get(),
        error: error.get(),
        services: services.get(),
        krate: krate.get(),
        keys,
    }
}

/// Reads `#[serde(..)]` on the event enum, rejecting the representations that would store the
/// type name inside the body. Every other serde key is serde's business and is skipped.
pub(crate) fn serde_enum_attrs(cx: &Ctxt, attrs: &[Attribute]) {
    for_each_serde_key(attrs, |meta| {
        if meta.path.is_ident("tag")
            || meta.path.is_ident("content")
            || meta.path.is_ident("untagged")
        {
            // #[serde(tag = "type")], #[serde(content = "data")], #[serde(untagged)]
            cx.error_spanned_by(
                &meta.path,
                format!(
                    "`#[serde({})]` is not supported on an event enum: the event type name is stored beside the body, not in it; use `#[event(name = ..)]` on a variant to set it",
                    key(meta)
                ),
            );
        } else if meta.path.is_ident("rename_all") {
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
        if meta.path.is_ident("rename") {
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
        } else if meta.path.is_ident("skip")
            || meta.path.is_ident("skip_serializing")
            || meta.path.is_ident("skip_deserializing")
        {
            // #[serde(skip)], #[serde(skip_serializing)], #[serde(skip_deserializing)]
            cx.error_spanned_by(
                &meta.path,
                format!(
                    "`#[serde({})]` is not supported on an event variant: every event must be stored and loaded again; remove the variant from the event enum instead",
                    key(meta)
                ),
            );
        } else if meta.path.is_ident("other") {
            // #[serde(other)]
            cx.error_spanned_by(
                &meta.path,
                "`#[serde(other)]` is not supported on an event variant: a stored type name no variant has is reported as `DecodeError::UnknownType`",
            );
        } else if meta.path.is_ident("untagged") {
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

/// Reports a helper attribute on a field, where the derive never looks.
pub(crate) fn reject_on_fields(cx: &Ctxt, fields: &Fields, attr: &str) {
    for field in fields {
        for a in &field.attrs {
            if a.path().is_ident(attr) {
                cx.error_spanned_by(a, format!("`#[{attr}(..)]` is not supported on a field"));
            }
        }
    }
}

/// Runs `f` on each key of every `#[name(..)]` attribute; a syntax error ends that attribute.
/// Returns the keys written, valid or not, so a required key given a bad value is not also
/// reported as missing.
fn for_each_key(
    cx: &Ctxt,
    attrs: &[Attribute],
    name: &str,
    mut f: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<()>,
) -> Vec<String> {
    let mut keys = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(name)) {
        let parsed = attr.parse_nested_meta(|meta| {
            keys.push(key(&meta));
            f(&meta)
        });
        if let Err(error) = parsed {
            cx.syn_error(error);
        }
    }
    keys
}

/// Runs `f` on each key of every `#[serde(..)]` attribute. A serde attribute this crate cannot
/// parse is left for serde_derive to report.
fn for_each_serde_key(
    attrs: &[Attribute],
    mut f: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| f(&meta));
    }
}

/// The key as written, e.g. `version`.
fn key(meta: &ParseNestedMeta<'_>) -> String {
    meta.path.to_token_stream().to_string().replace(' ', "")
}

/// Reports an unknown key, listing the known ones, and skips its value.
fn unknown_key(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    attr: &str,
    position: &str,
    known: &[&str],
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
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// A key that takes no value: `async`, `services`.
fn parse_flag(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        let key = key(meta);
        cx.error_spanned_by(
            &meta.path,
            format!("`{key}` takes no value: write `{key}` alone"),
        );
        skip_value(meta)?;
    }
    Ok(())
}

/// `key = "..."`.
fn parse_string(
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
fn parse_crate_path(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Path>> {
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
fn parse_version(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<VersionLit>> {
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

fn version_lit(cx: &Ctxt, key: &str, lit: LitInt) -> Option<VersionLit> {
    match lit.base10_parse::<u32>() {
        Ok(value) => Some(VersionLit { value, lit }),
        Err(_) => {
            cx.error_spanned_by(&lit, format!("`{key}` must fit in a `u32`"));
            None
        }
    }
}

/// `snapshot_every = 100`.
fn parse_snapshot_every(
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
fn parse_steps<T>(
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
fn parse_string_list(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<LitStr>> {
    let content;
    syn::parenthesized!(content in meta.input);
    let list = content.parse_terminated(|input| input.parse::<LitStr>(), Token![,])?;
    Ok(list.into_iter().collect())
}

/// `key = Type`.
fn parse_type(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<Type>> {
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
fn parse_method_name(
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
fn parse_handler(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<ExprPath>> {
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
