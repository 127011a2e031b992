//! `impl Handle<Enum>` for the aggregate: one handler call per command variant.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Type;

use super::{destructure, respan, type_prefix};
use crate::ast::{CommandEnum, CommandVariant, Handler};

pub(super) fn expand(
    input: &CommandEnum<'_>,
    aggregate: &Type,
    variants: &[CommandVariant<'_>],
) -> TokenStream {
    let ident = &input.input.ident;
    let aggregate_prefix = type_prefix(aggregate);

    let body = if variants.is_empty() {
        quote!(::core::future::ready(match *__command {}))
    } else {
        let arms = variants.iter().map(|variant| {
            let (pattern, bindings) = destructure(ident, variant.ident, variant.fields);
            let function = match &variant.handler {
                Handler::Method(method) => {
                    let prefix = respan(aggregate_prefix.clone(), variant.ident.span());
                    quote!(#prefix::#method)
                }
                Handler::Path(path) => quote!(#path),
            };
            let services = variant.services.then(|| quote!(__services));
            let args = bindings
                .iter()
                .map(|binding| quote!(#binding))
                .chain(services);
            let await_ = variant.is_async.then(|| quote!(.await));
            // Spanned on the variant, so a missing or mistyped handler is reported there.
            let call = quote_spanned! {variant.ident.span()=>
                #function(self, #(#args),*) #await_
            };
            quote!(#pattern => #call,)
        });
        let dispatch = quote!(match __command { #(#arms)* });
        if variants.iter().any(|variant| variant.is_async) {
            quote!(async move { #dispatch })
        } else {
            quote!(::core::future::ready(#dispatch))
        }
    };
    let allow = variants
        .is_empty()
        .then(|| quote!(#[allow(unreachable_code)]));

    impl_handle(input, aggregate, quote! { #allow }, body)
}

/// A stub impl that lets the rest of the program type-check while the errors are reported;
/// none when the aggregate is unknown or the input is not an enum.
pub(super) fn fallback(input: &CommandEnum<'_>) -> TokenStream {
    match (&input.aggregate, &input.variants) {
        (Some(aggregate), Some(_)) => impl_handle(
            input,
            aggregate,
            TokenStream::new(),
            quote!(::core::future::pending()),
        ),
        _ => TokenStream::new(),
    }
}

fn impl_handle(
    input: &CommandEnum<'_>,
    aggregate: &Type,
    fn_attrs: TokenStream,
    body: TokenStream,
) -> TokenStream {
    let krate = &input.krate;
    let private = quote!(#krate::__private);
    let ident = &input.input.ident;
    let (impl_generics, ty_generics, where_clause) = input.input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #private::Handle<#ident #ty_generics> for #aggregate #where_clause {
            #fn_attrs
            fn handle(
                &self,
                __command: &#ident #ty_generics,
                __services: &<Self as #private::Aggregate>::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    ::std::vec::Vec<<Self as #private::Aggregate>::Event>,
                    <Self as #private::Aggregate>::Error,
                >,
            > + ::core::marker::Send {
                #body
            }
        }
    }
}
