//! The `#[retry]` attribute. Depend on `llm-resilience`, which re-exports it and
//! documents every argument; this crate holds only the macro.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The macro runs in three steps, a module each: `parse` reads the arguments
// as written (syntax, with spans); `validate` checks what they mean, against
// each other and the function, and resolves them into a `Config` with every
// default filled in from `defaults`, collecting every mistake; `expand`
// writes the function from the `Config`.
mod defaults;
mod duration;
mod expand;
mod parse;
mod suggest;
mod validate;

use proc_macro::TokenStream;
use quote::quote;

/// `#[retry]` is defined in `llm-resilience-macros` and re-exported by
/// `llm-resilience` as
/// [`llm_resilience::retry`](https://docs.rs/llm-resilience/latest/llm_resilience/attr.retry.html),
/// whose documentation is the reference of every argument, with its default
/// and examples. Depend on `llm-resilience` only.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    retry2(args.into(), item.into()).into()
}

fn retry2(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let raw = parse::parse(args);
    let raw_keys: Vec<String> = raw
        .items
        .iter()
        .filter_map(|item| item.as_ref().ok().map(|arg| arg.key.to_string()))
        .collect();
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let e =
                syn::Error::new_spanned(&item, "#[retry] goes on a function or method with a body")
                    .to_compile_error();
            return quote! { #item #e };
        }
    };
    match validate::validate(raw, &func) {
        Ok(config) => expand::expand(&config, &func),
        Err(errors) => {
            // Emit the function beside the errors, so that the rest of the
            // crate still sees it: untouched, but for a streamed one, whose
            // body returns a byte stream where the signature says the
            // retried stream (a body of its own would only add a type error
            // to those reported). An `impl Trait` success type needs a body
            // to define it, so that one keeps its own.
            let errors = errors.iter().map(syn::Error::to_compile_error);
            let streamed = raw_streams(&raw_keys);
            let func = if streamed && !returns_impl_trait(&func) {
                let syn::ItemFn {
                    attrs, vis, sig, ..
                } = &func;
                quote! {
                    #(#attrs)*
                    #[allow(unused_variables)]
                    #vis #sig {
                        ::core::unimplemented!("#[retry] could not expand this function")
                    }
                }
            } else {
                quote!(#func)
            };
            quote! { #func #(#errors)* }
        }
    }
}

/// Whether the arguments, as written, make the function a streamed one.
fn raw_streams(keys: &[String]) -> bool {
    keys.iter().any(|key| key == "stream")
}

/// Whether `func` returns a type with an `impl Trait` in it.
fn returns_impl_trait(func: &syn::ItemFn) -> bool {
    match &func.sig.output {
        syn::ReturnType::Default => false,
        syn::ReturnType::Type(_, ty) => quote!(#ty).to_string().contains("impl "),
    }
}
