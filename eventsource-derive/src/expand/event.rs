//! `impl Event` (names, versions, the body codec) and `impl Apply<Enum>` for the state.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::Type;

use super::{destructure, respan, type_prefix};
use crate::ast::{EventEnum, EventVariant};

pub(super) fn expand(input: &EventEnum<'_>, variants: &[EventVariant<'_>]) -> TokenStream {
    let mut tokens = impl_event(input, variants);
    if let Some(state) = &input.apply {
        tokens.extend(impl_apply(input, state, variants));
    }
    tokens
}

fn impl_event(input: &EventEnum<'_>, variants: &[EventVariant<'_>]) -> TokenStream {
    let krate = &input.krate;
    let private = quote!(#krate::__private);
    let ident = &input.input.ident;

    // A generic enum is an event only where it can be encoded and decoded.
    let mut generics = input.input.generics.clone();
    if generics.type_params().next().is_some() {
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(
                Self: #private::serde::Serialize + #private::serde::de::DeserializeOwned
            ));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let variant_idents: Vec<_> = variants.iter().map(|variant| variant.ident).collect();
    let names: Vec<&str> = variants
        .iter()
        .map(|variant| variant.name.as_str())
        .collect();
    let versions: Vec<Literal> = variants
        .iter()
        .map(|variant| Literal::u32_unsuffixed(variant.version))
        .collect();
    let serde_names = variants.iter().map(|variant| variant.serde_name.as_str());

    let (event_type, schema_version) = if variants.is_empty() {
        (quote!(match *self {}), quote!(match *self {}))
    } else {
        (
            quote!(match self { #(Self::#variant_idents { .. } => #names,)* }),
            quote!(match self { #(Self::#variant_idents { .. } => #versions,)* }),
        )
    };

    quote! {
        #[automatically_derived]
        impl #impl_generics #private::Event for #ident #ty_generics #where_clause {
            fn event_type(&self) -> &'static str {
                #event_type
            }

            fn schema_version(&self) -> u32 {
                #schema_version
            }

            fn encode(&self) -> ::core::result::Result<#private::Payload, #private::EncodeError> {
                #private::encode_body(
                    self,
                    <Self as #private::Event>::event_type(self),
                    <Self as #private::Event>::schema_version(self),
                )
            }

            fn decode(
                __event_type: &str,
                __schema_version: u32,
                __payload: &#private::Payload,
            ) -> ::core::result::Result<::core::option::Option<Self>, #private::DecodeError> {
                match __event_type {
                    #(
                        #names => {
                            if __schema_version == #versions {
                                #private::decode_body::<Self>(
                                    #serde_names,
                                    __event_type,
                                    __schema_version,
                                    __payload,
                                )
                                .map(::core::option::Option::Some)
                            } else {
                                ::core::result::Result::Err(#private::unsupported_version(
                                    __event_type,
                                    __schema_version,
                                    #versions,
                                ))
                            }
                        }
                    )*
                    _ => ::core::result::Result::Err(#private::unknown_type(
                        __event_type,
                        __schema_version,
                    )),
                }
            }
        }
    }
}

fn impl_apply(input: &EventEnum<'_>, state: &Type, variants: &[EventVariant<'_>]) -> TokenStream {
    let krate = &input.krate;
    let ident = &input.input.ident;
    let (impl_generics, ty_generics, where_clause) = input.input.generics.split_for_impl();
    let state_prefix = type_prefix(state);

    let body = if variants.is_empty() {
        quote!(match *__event {})
    } else {
        let arms = variants.iter().map(|variant| {
            let (pattern, bindings) = destructure(ident, variant.ident, variant.fields);
            let method = &variant.apply_method;
            let state_prefix = respan(state_prefix.clone(), variant.ident.span());
            // Spanned on the variant, so a missing or mistyped method is reported there.
            let call = quote_spanned! {variant.ident.span()=>
                #state_prefix::#method(self, #(#bindings),*)
            };
            quote!(#pattern => #call,)
        });
        quote!(match __event { #(#arms)* })
    };

    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::__private::Apply<#ident #ty_generics> for #state #where_clause {
            fn apply(&mut self, __event: &#ident #ty_generics) {
                #body
            }
        }
    }
}

/// Stub impls that let the rest of the program type-check while the errors are reported.
pub(super) fn fallback(input: &EventEnum<'_>) -> TokenStream {
    let krate = &input.krate;
    let private = quote!(#krate::__private);
    let ident = &input.input.ident;
    let (impl_generics, ty_generics, where_clause) = input.input.generics.split_for_impl();
    let mut tokens = quote! {
        #[automatically_derived]
        impl #impl_generics #private::Event for #ident #ty_generics #where_clause {
            fn event_type(&self) -> &'static str {
                ::core::unimplemented!()
            }

            fn schema_version(&self) -> u32 {
                ::core::unimplemented!()
            }

            fn encode(&self) -> ::core::result::Result<#private::Payload, #private::EncodeError> {
                ::core::unimplemented!()
            }

            fn decode(
                _: &str,
                _: u32,
                _: &#private::Payload,
            ) -> ::core::result::Result<::core::option::Option<Self>, #private::DecodeError> {
                ::core::unimplemented!()
            }
        }
    };
    if let Some(state) = &input.apply {
        tokens.extend(quote! {
            #[automatically_derived]
            impl #impl_generics #private::Apply<#ident #ty_generics> for #state #where_clause {
                fn apply(&mut self, _: &#ident #ty_generics) {
                    ::core::unimplemented!()
                }
            }
        });
    }
    tokens
}
