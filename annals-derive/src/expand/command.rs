//! `impl Handle<Enum>` for the aggregate: one handler call per command variant.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Data, DeriveInput, Path, Type};

use super::{destructure, respan, type_prefix};
use crate::ast::{crate_path, CommandEnum, Handler};
use crate::attr;
use crate::ctxt::Ctxt;

pub(super) fn expand(input: &CommandEnum<'_>) -> TokenStream {
    let (aggregate, variants) = (&input.aggregate, &input.variants);
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

    impl_handle(
        input.input,
        &input.krate,
        aggregate,
        quote! { #allow },
        body,
    )
}

/// A stub impl that lets the rest of the program type-check while the errors are reported:
/// from the attributes alone, read again without reporting (the first pass did), and only
/// when the input is an enum naming its aggregate.
pub(super) fn fallback(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attrs = attr::command_attrs(&cx, &input.attrs);
    cx.discard();
    match (&input.data, attrs.aggregate.get()) {
        (Data::Enum(_), Some(aggregate)) => impl_handle(
            input,
            &crate_path(attrs.krate),
            &aggregate,
            TokenStream::new(),
            quote!(::core::future::pending()),
        ),
        _ => TokenStream::new(),
    }
}

fn impl_handle(
    input: &DeriveInput,
    krate: &Path,
    aggregate: &Type,
    fn_attrs: TokenStream,
    body: TokenStream,
) -> TokenStream {
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
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
