//! `impl Event` (names, versions, the body codec) and `impl Apply<Enum>` for the state.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Type};

use super::{destructure, respan, type_prefix};
use crate::ast::{crate_path, EventEnum, EventVariant, Step, StepKind};
use crate::attr;
use crate::ctxt::Ctxt;

pub(super) fn expand(input: &EventEnum<'_>) -> TokenStream {
    let mut tokens = impl_event(input, &input.variants);
    if let Some(state) = &input.apply {
        tokens.extend(impl_apply(input, state, &input.variants));
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
    let decode_arms = variants.iter().map(|variant| decode_arm(&private, variant));
    let removed = &input.removed;
    let removed_arm = if removed.is_empty() {
        TokenStream::new()
    } else {
        quote!(#(#removed)|* => ::core::result::Result::Ok(::core::option::Option::None),)
    };

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
                __payload: &str,
            ) -> ::core::result::Result<::core::option::Option<Self>, #private::DecodeError> {
                match __event_type {
                    #(#decode_arms)*
                    #removed_arm
                    _ => ::core::result::Result::Err(#private::unknown_type(
                        __event_type,
                        __schema_version,
                    )),
                }
            }
        }
    }
}

/// The decode arm of one variant: its name and aliases, the current version straight into the
/// enum, and each older version through the rest of the upcast chain.
fn decode_arm(private: &TokenStream, variant: &EventVariant<'_>) -> TokenStream {
    let name = &variant.name;
    let aliases = variant.aliases.iter();
    let current = Literal::u32_unsuffixed(variant.version);
    let serde_name = &variant.serde_name;
    let mut steps: Vec<&Step> = variant.steps.iter().collect();
    steps.sort_by_key(|step| step.from);
    let older = (0..steps.len()).map(|start| {
        let from = Literal::u32_unsuffixed(steps[start].from);
        let chain = upcast_chain(private, serde_name, &steps[start..]);
        quote!(#from => { #chain })
    });
    quote! {
        #name #(| #aliases)* => match __schema_version {
            #current => #private::decode_body::<Self>(
                #serde_name,
                __event_type,
                __schema_version,
                __payload,
            )
            .map(::core::option::Option::Some),
            #(#older)*
            _ => ::core::result::Result::Err(#private::unsupported_version(
                __event_type,
                __schema_version,
                #current,
            )),
        },
    }
}

/// Brings a stored body through `steps` (consecutive, the last one ending at the current
/// version): JSON steps on a `serde_json::Value`, then typed steps with `TryFrom`, the last of
/// which produces the event enum.
fn upcast_chain(private: &TokenStream, serde_name: &str, steps: &[&Step]) -> TokenStream {
    let json: Vec<&Step> = steps
        .iter()
        .copied()
        .take_while(|step| matches!(step.kind, StepKind::Json(_)))
        .collect();
    let typed: Vec<(&Step, &Type)> = steps[json.len()..]
        .iter()
        .filter_map(|step| match &step.kind {
            StepKind::Typed(ty) => Some((*step, ty)),
            StepKind::Json(_) => None,
        })
        .collect();
    let mut tokens = TokenStream::new();
    if !json.is_empty() {
        tokens.extend(quote! {
            let __json = #private::body_value(__event_type, __schema_version, __payload)?;
        });
        for step in &json {
            let from = Literal::u32_unsuffixed(step.from);
            if let StepKind::Json(upcaster) = &step.kind {
                let call = quote_spanned!(upcaster.span()=> #upcaster(__json));
                tokens.extend(quote! {
                    let __json = #private::upcast_step(__event_type, #from, #call)?;
                });
            }
        }
    }
    let Some(((first, first_ty), rest)) = typed.split_first() else {
        tokens.extend(quote! {
            #private::decode_value::<Self>(#serde_name, __event_type, __schema_version, __json)
                .map(::core::option::Option::Some)
        });
        return tokens;
    };
    let first_from = Literal::u32_unsuffixed(first.from);
    tokens.extend(if json.is_empty() {
        quote! {
            let __typed = #private::typed_body::<#first_ty>(__event_type, __schema_version, __payload)?;
        }
    } else {
        quote! {
            let __typed = #private::typed_from_value::<#first_ty>(__event_type, #first_from, __json)?;
        }
    });
    let mut previous: (&Step, &Type) = (first, first_ty);
    for &(step, ty) in rest {
        let (prev_step, prev_ty) = previous;
        let from = Literal::u32_unsuffixed(prev_step.from);
        tokens.extend(quote! {
            let __typed = #private::typed_step::<#prev_ty, #ty>(__event_type, #from, __typed)?;
        });
        previous = (step, ty);
    }
    let (last, last_ty) = previous;
    let from = Literal::u32_unsuffixed(last.from);
    let call = quote_spanned! {last_ty.span()=>
        #private::typed_step::<#last_ty, Self>(__event_type, #from, __typed)
    };
    tokens.extend(quote!(#call.map(::core::option::Option::Some)));
    tokens
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
            let method = apply_method(&state_prefix, variant);
            let params = bindings.iter().map(|_| quote!(&_));
            // The method is called through the `fn` pointer type its variant expects, spanned
            // on the variant: a missing method is reported there, and a field taken by value as
            // "expected fn pointer `fn(&mut State, &_)`, found fn item ..", the one error of
            // the mistake. Fields are `&_`, not their own types, because a method may take what
            // a field derefs to (`&str` for a `String`). An optimized build calls the method
            // directly.
            let call = quote_spanned! {variant.ident.span()=>
                let __apply: fn(&mut #state, #(#params),*) = #method;
                __apply(self, #(#bindings),*)
            };
            quote!(#pattern => { #call })
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

/// `State::method` of a variant, spanned on the variant so that errors about it point there.
fn apply_method(state_prefix: &TokenStream, variant: &EventVariant<'_>) -> TokenStream {
    let method = &variant.apply_method;
    let state_prefix = respan(state_prefix.clone(), variant.ident.span());
    quote!(#state_prefix::#method)
}

/// Stub impls that let the rest of the program type-check while the errors are reported: from
/// the attributes alone, read again without reporting (the first pass did).
pub(super) fn fallback(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attrs = attr::event_attrs(&cx, &input.attrs);
    cx.discard();
    let krate = crate_path(attrs.krate);
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
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
                _: &str,
            ) -> ::core::result::Result<::core::option::Option<Self>, #private::DecodeError> {
                ::core::unimplemented!()
            }
        }
    };
    if let Some(state) = &attrs.apply {
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
