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
use crate::symbol::{
    Symbol, AGGREGATE, ALIAS, APPLY, ASYNC, COMMAND, CONTENT, CRATE, ERROR, EVENT, HANDLER, NAME,
    OTHER, REMOVED, RENAME, RENAME_ALL, SERDE, SERVICES, SKIP, SKIP_DESERIALIZING,
    SKIP_SERIALIZING, SNAPSHOT_EVERY, SNAPSHOT_VERSION, TAG, UNTAGGED, UPCAST, UPCAST_FROM,
    VERSION,
};

/// One key's value in three states: not written, written with a value, or written and already
/// reported (a bad value or a syntax error), so that a required key is not also reported missing.
/// A second occurrence is reported as a duplicate and the first value kept (serde's `Attr`).
pub(crate) struct Attr<T> {
    attr: Symbol,
    key: Symbol,
    value: Value<T>,
}

/// What an [`Attr`] holds.
pub(crate) enum Value<T> {
    Absent,
    Set(T),
    Reported,
}

impl<T> Attr<T> {
    fn none(attr: Symbol, key: Symbol) -> Self {
        Attr {
            attr,
            key,
            value: Value::Absent,
        }
    }

    /// Stores the value the branch parsed (`Ok(None)`: a bad value, already reported), or
    /// reports a duplicate on the second occurrence's key.
    fn set(
        &mut self,
        cx: &Ctxt,
        meta: &ParseNestedMeta<'_>,
        parsed: syn::Result<Option<T>>,
    ) -> syn::Result<()> {
        if !matches!(self.value, Value::Absent) {
            cx.error_spanned_by(
                &meta.path,
                format!("duplicate `{}` attribute `{}`", self.attr, self.key),
            );
            return parsed.map(drop);
        }
        self.value = match parsed {
            Ok(Some(value)) => Value::Set(value),
            Ok(None) => Value::Reported,
            Err(error) => {
                self.value = Value::Reported;
                return Err(error);
            }
        };
        Ok(())
    }

    /// The value, if one was written and valid.
    pub(crate) fn get(self) -> Option<T> {
        match self.value {
            Value::Set(value) => Some(value),
            Value::Absent | Value::Reported => None,
        }
    }

    /// Whether a flag (`async`, `services`) was written.
    fn is_set(&self) -> bool {
        matches!(self.value, Value::Set(_))
    }

    /// The attribute and the key, for messages: `command`, `aggregate`.
    pub(crate) fn names(&self) -> (Symbol, Symbol) {
        (self.attr, self.key)
    }

    pub(crate) fn into_value(self) -> Value<T> {
        self.value
    }
}

/// Dispatches a key of `#[attr(..)]` to its branch, or reports it as unknown with the list of
/// the branches' keys: the list is made from the branches, so it cannot leave one out.
///
/// `match_key!(cx, meta, EVENT, "", { APPLY => { .. } CRATE => { .. } })`
macro_rules! match_key {
    ($cx:expr, $meta:expr, $attr:expr, $position:expr, { $($key:ident => $branch:block)+ }) => {
        $(if $meta.path == $key $branch else)+ {
            unknown_key($cx, $meta, $attr, $position, &[$($key),+])?;
        }
    };
}

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
    /// Required: `check::required` reports it missing.
    pub(crate) aggregate: Attr<Type>,
    pub(crate) is_async: bool,
    pub(crate) services: bool,
    pub(crate) krate: Option<Path>,
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
    /// Required, as are `command` and `error`: `check::required` reports them missing.
    pub(crate) event: Attr<Type>,
    pub(crate) command: Attr<Type>,
    pub(crate) error: Attr<Type>,
    pub(crate) services: Option<Type>,
    pub(crate) krate: Option<Path>,
}

/// The `#[serde(..)]` keys of an event variant that the derive needs.
pub(crate) struct SerdeVariantAttrs {
    /// `#[serde(rename = "..")]`: the name serde reads and writes for the variant.
    pub(crate) rename: Option<LitStr>,
}

pub(crate) fn event_attrs(cx: &Ctxt, attrs: &[Attribute]) -> EventAttrs {
    let mut apply = Attr::none(EVENT, APPLY);
    let mut removed = Attr::none(EVENT, REMOVED);
    let mut krate = Attr::none(EVENT, CRATE);
    for_each_key(cx, attrs, EVENT, |meta| {
        match_key!(cx, meta, EVENT, "", {
            APPLY => {
                // #[event(apply = BankAccount)]
                apply.set(cx, meta, parse_type(cx, meta, "apply = BankAccount"))?;
            }
            REMOVED => {
                // #[event(removed("AuditPinged", "LegacyFlag"))]
                removed.set(cx, meta, parse_string_list(meta).map(Some))?;
            }
            CRATE => {
                // #[event(crate = "::annals")]
                krate.set(cx, meta, parse_crate_path(cx, meta))?;
            }
        });
        Ok(())
    });
    EventAttrs {
        apply: apply.get(),
        removed: removed.get().unwrap_or_default(),
        krate: krate.get(),
    }
}

pub(crate) fn event_variant_attrs(cx: &Ctxt, attrs: &[Attribute]) -> EventVariantAttrs {
    let mut name = Attr::none(EVENT, NAME);
    let mut aliases = Vec::new();
    let mut version = Attr::none(EVENT, VERSION);
    let mut upcast = Attr::none(EVENT, UPCAST);
    let mut upcast_from = Attr::none(EVENT, UPCAST_FROM);
    let mut apply = Attr::none(EVENT, APPLY);
    for_each_key(cx, attrs, EVENT, |meta| {
        match_key!(cx, meta, EVENT, " on a variant", {
            NAME => {
                // #[event(name = "account.opened")]
                name.set(cx, meta, parse_string(cx, meta, "name = \"account.opened\""))?;
            }
            ALIAS => {
                // #[event(alias = "AccountOpened")], repeatable
                if let Some(lit) = parse_string(cx, meta, "alias = \"AccountOpened\"")? {
                    aliases.push(lit);
                }
            }
            VERSION => {
                // #[event(version = 2)]
                version.set(cx, meta, parse_version(cx, meta))?;
            }
            UPCAST => {
                // #[event(upcast(1 => upcast::opened_v1, 2 => upcast::opened_v2))]
                let steps = parse_steps(cx, meta, |input| input.parse::<ExprPath>());
                upcast.set(cx, meta, steps.map(Some))?;
            }
            UPCAST_FROM => {
                // #[event(upcast_from(1 => OpenedV1, 2 => OpenedV2))]
                let steps = parse_steps(cx, meta, |input| input.parse::<Type>());
                upcast_from.set(cx, meta, steps.map(Some))?;
            }
            APPLY => {
                // #[event(apply = on_opened)]
                apply.set(cx, meta, parse_method_name(cx, meta, "apply = on_opened"))?;
            }
        });
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
    let mut aggregate = Attr::none(COMMAND, AGGREGATE);
    let mut is_async = Attr::none(COMMAND, ASYNC);
    let mut services = Attr::none(COMMAND, SERVICES);
    let mut krate = Attr::none(COMMAND, CRATE);
    for_each_key(cx, attrs, COMMAND, |meta| {
        match_key!(cx, meta, COMMAND, "", {
            AGGREGATE => {
                // #[command(aggregate = BankAccount)]
                aggregate.set(cx, meta, parse_type(cx, meta, "aggregate = BankAccount"))?;
            }
            ASYNC => {
                // #[command(async)]
                is_async.set(cx, meta, parse_flag(cx, meta))?;
            }
            SERVICES => {
                // #[command(services)]
                services.set(cx, meta, parse_flag(cx, meta))?;
            }
            CRATE => {
                // #[command(crate = "::annals")]
                krate.set(cx, meta, parse_crate_path(cx, meta))?;
            }
        });
        Ok(())
    });
    CommandAttrs {
        aggregate,
        is_async: is_async.is_set(),
        services: services.is_set(),
        krate: krate.get(),
    }
}

pub(crate) fn command_variant_attrs(cx: &Ctxt, attrs: &[Attribute]) -> CommandVariantAttrs {
    let mut handler = Attr::none(COMMAND, HANDLER);
    let mut is_async = Attr::none(COMMAND, ASYNC);
    let mut services = Attr::none(COMMAND, SERVICES);
    for_each_key(cx, attrs, COMMAND, |meta| {
        match_key!(cx, meta, COMMAND, " on a variant", {
            HANDLER => {
                // #[command(handler = close_account)] or #[command(handler = handlers::close)]
                handler.set(cx, meta, parse_handler(cx, meta))?;
            }
            ASYNC => {
                // #[command(async)]
                is_async.set(cx, meta, parse_flag(cx, meta))?;
            }
            SERVICES => {
                // #[command(services)]
                services.set(cx, meta, parse_flag(cx, meta))?;
            }
        });
        Ok(())
    });
    CommandVariantAttrs {
        handler: handler.get(),
        is_async: is_async.is_set(),
        services: services.is_set(),
    }
}

pub(crate) fn aggregate_attrs(cx: &Ctxt, attrs: &[Attribute]) -> AggregateAttrs {
    let mut name = Attr::none(AGGREGATE, NAME);
    let mut snapshot_every = Attr::none(AGGREGATE, SNAPSHOT_EVERY);
    let mut snapshot_version = Attr::none(AGGREGATE, SNAPSHOT_VERSION);
    let mut event = Attr::none(AGGREGATE, EVENT);
    let mut command = Attr::none(AGGREGATE, COMMAND);
    let mut error = Attr::none(AGGREGATE, ERROR);
    let mut services = Attr::none(AGGREGATE, SERVICES);
    let mut krate = Attr::none(AGGREGATE, CRATE);
    for_each_key(cx, attrs, AGGREGATE, |meta| {
        match_key!(cx, meta, AGGREGATE, "", {
            NAME => {
                // #[aggregate(name = "bank-account")]
                name.set(cx, meta, parse_string(cx, meta, "name = \"bank-account\""))?;
            }
            EVENT => {
                // #[aggregate(event = AccountEvent)]
                event.set(cx, meta, parse_type(cx, meta, "event = AccountEvent"))?;
            }
            COMMAND => {
                // #[aggregate(command = AccountCommand)]
                command.set(cx, meta, parse_type(cx, meta, "command = AccountCommand"))?;
            }
            ERROR => {
                // #[aggregate(error = AccountError)]
                error.set(cx, meta, parse_type(cx, meta, "error = AccountError"))?;
            }
            SERVICES => {
                // #[aggregate(services = Clock)]
                services.set(cx, meta, parse_type(cx, meta, "services = Clock"))?;
            }
            SNAPSHOT_EVERY => {
                // #[aggregate(snapshot_every = 100)]
                snapshot_every.set(cx, meta, parse_snapshot_every(cx, meta))?;
            }
            SNAPSHOT_VERSION => {
                // #[aggregate(snapshot_version = 2)]
                snapshot_version.set(cx, meta, parse_version(cx, meta))?;
            }
            CRATE => {
                // #[aggregate(crate = "::annals")]
                krate.set(cx, meta, parse_crate_path(cx, meta))?;
            }
        });
        Ok(())
    });
    AggregateAttrs {
        name: name.get(),
        snapshot_every: snapshot_every.get(),
        snapshot_version: snapshot_version.get(),
        event,
        command,
        error,
        services: services.get(),
        krate: krate.get(),
    }
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

/// Reports a helper attribute on a field, where the derive never looks.
pub(crate) fn reject_on_fields(cx: &Ctxt, fields: &Fields, attr: Symbol) {
    for field in fields {
        for a in &field.attrs {
            if a.path() == attr {
                cx.error_spanned_by(a, format!("`#[{attr}(..)]` is not supported on a field"));
            }
        }
    }
}

/// Runs `f` on each key of every `#[name(..)]` attribute; a syntax error ends that attribute.
fn for_each_key(
    cx: &Ctxt,
    attrs: &[Attribute],
    name: Symbol,
    mut f: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| attr.path() == name) {
        if let Err(error) = attr.parse_nested_meta(|meta| f(&meta)) {
            cx.syn_error(error);
        }
    }
}

/// Runs `f` on each key of every `#[serde(..)]` attribute. A serde attribute this crate cannot
/// parse is left for serde_derive to report.
fn for_each_serde_key(
    attrs: &[Attribute],
    mut f: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| attr.path() == SERDE) {
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
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// A key that takes no value: `async`, `services`. A value is reported and skipped; the flag
/// still counts as written.
fn parse_flag(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<()>> {
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
