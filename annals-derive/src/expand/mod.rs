//! Code generation. Each derive builds the model, checks it, and then emits either the impls or,
//! when anything was wrong, the errors beside stub impls (thiserror's fallback), so that one
//! mistake does not cascade into errors wherever the traits are used.

mod aggregate;
mod command;
mod event;

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};
use syn::{DeriveInput, Fields, Ident, PathArguments, Type};

use crate::ast::{AggregateStruct, CommandEnum, EventEnum};
use crate::check;
use crate::ctxt::Ctxt;

/// `#[derive(Event)]`: `impl Event`, and `impl Apply<Enum>` for the `apply` state.
pub(crate) fn derive_event(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = EventEnum::from_ast(&cx, input);
    if let Some(model) = &model {
        check::event_enum(&cx, model);
    }
    match cx.check(model) {
        Ok(model) => event::expand(&model),
        Err(error) => with_fallback(&error, event::fallback(input)),
    }
}

/// `#[derive(Command)]`: `impl Handle<Enum>` for the aggregate.
pub(crate) fn derive_command(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = CommandEnum::from_ast(&cx, input);
    match cx.check(model) {
        Ok(model) => command::expand(&model),
        Err(error) => with_fallback(&error, command::fallback(input)),
    }
}

/// `#[derive(Aggregate)]`: `impl Aggregate`, delegating to the `Apply` and `Handle` impls.
pub(crate) fn derive_aggregate(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = AggregateStruct::from_ast(&cx, input);
    if let Some(model) = &model {
        check::aggregate_struct(&cx, model);
    }
    match cx.check(model) {
        Ok(model) => aggregate::expand(&model),
        Err(error) => with_fallback(&error, aggregate::fallback(input)),
    }
}

fn with_fallback(error: &syn::Error, fallback: TokenStream) -> TokenStream {
    let mut tokens = error.to_compile_error();
    tokens.extend(fallback);
    tokens
}

/// The pattern that destructures one variant of `enum_ident` by reference, and its bindings in
/// field order: `Enum::V { a: __f0, b: __f1 }`, `Enum::V(__f0)`, `Enum::V`.
///
/// Fields bind to numbered `__` locals, never to the user's field names: a constant with a
/// field's name would turn the binding into a constant pattern, and a field named `services`
/// must not shadow the injected services.
fn destructure(enum_ident: &Ident, variant: &Ident, fields: &Fields) -> (TokenStream, Vec<Ident>) {
    let bindings: Vec<Ident> = (0..fields.len())
        .map(|i| format_ident!("__f{}", i))
        .collect();
    let pattern = match fields {
        Fields::Named(named) => {
            let names = named.named.iter().map(|field| &field.ident);
            quote!(#enum_ident::#variant { #(#names: #bindings),* })
        }
        Fields::Unnamed(_) => quote!(#enum_ident::#variant(#(#bindings),*)),
        Fields::Unit => quote!(#enum_ident::#variant),
    };
    (pattern, bindings)
}

/// The same tokens, all spanned on `span`: a call made of a type from the enum attribute and a
/// method named after a variant then reports its errors on the variant alone.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// A type in the position before `::method`: `BankAccount` as is, anything with generics or
/// qualification as `<Type>`.
fn type_prefix(ty: &Type) -> TokenStream {
    if let Type::Path(path) = ty {
        let plain = path.qself.is_none()
            && path
                .path
                .segments
                .iter()
                .all(|segment| matches!(segment.arguments, PathArguments::None));
        if plain {
            return quote!(#ty);
        }
    }
    quote!(<#ty>)
}
