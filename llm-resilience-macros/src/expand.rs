//! Step 3: the function with its retry loop, written from a [`Config`].
//!
//! Nothing here checks anything: [`crate::validate`] has. The policy is
//! written as `Policy::new()` and a builder call for each setting that the
//! attribute wrote; the settings left to their default are left to
//! `Policy::new()`.

use core::time::Duration;

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Block, FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::defaults::Jitter;
use crate::validate::{Config, Interrupt, Limiter, Streamed, Wait};

/// Take `mut` off the bindings named in `names`, returning those that had
/// it: a cloned argument is never changed itself, only its per-attempt copy.
fn take_mut(pat: &mut Pat, names: &[Ident], out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(p) => {
            if p.mutability.is_some() && names.contains(&p.ident) {
                p.mutability = None;
                out.push(p.ident.clone());
            }
            if let Some((_, sub)) = &mut p.subpat {
                take_mut(sub, names, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter_mut().for_each(|p| take_mut(p, names, out)),
        Pat::TupleStruct(t) => t.elems.iter_mut().for_each(|p| take_mut(p, names, out)),
        Pat::Struct(s) => s
            .fields
            .iter_mut()
            .for_each(|f| take_mut(&mut f.pat, names, out)),
        Pat::Slice(s) => s.elems.iter_mut().for_each(|p| take_mut(p, names, out)),
        Pat::Reference(r) => take_mut(&mut r.pat, names, out),
        Pat::Paren(p) => take_mut(&mut p.pat, names, out),
        Pat::Type(t) => take_mut(&mut t.pat, names, out),
        _ => {}
    }
}

/// The return type as the attempt's output type, with every `impl Trait`
/// replaced by `_` for the compiler to infer.
fn pinned_return_type(func: &ItemFn) -> Type {
    match &func.sig.output {
        ReturnType::Type(_, ty) => infer_impl_trait(ty),
        ReturnType::Default => syn::parse_quote!(()),
    }
}

fn infer_impl_trait(ty: &Type) -> Type {
    let mut ty = ty.clone();
    replace_impl_trait(&mut ty);
    ty
}

fn replace_impl_trait(ty: &mut Type) {
    match ty {
        Type::ImplTrait(it) => {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](it.span()),
            });
        }
        Type::Path(p) => {
            if let Some(q) = &mut p.qself {
                replace_impl_trait(&mut q.ty);
            }
            for seg in &mut p.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut seg.arguments {
                    for arg in &mut args.args {
                        if let GenericArgument::Type(t) = arg {
                            replace_impl_trait(t);
                        }
                    }
                }
            }
        }
        Type::Reference(r) => replace_impl_trait(&mut r.elem),
        Type::Ptr(p) => replace_impl_trait(&mut p.elem),
        Type::Slice(s) => replace_impl_trait(&mut s.elem),
        Type::Array(a) => replace_impl_trait(&mut a.elem),
        Type::Paren(p) => replace_impl_trait(&mut p.elem),
        Type::Group(g) => replace_impl_trait(&mut g.elem),
        Type::Tuple(t) => t.elems.iter_mut().for_each(replace_impl_trait),
        _ => {}
    }
}

/// The async body as the attempt's block, type-checked as the function's own
/// body would be.
///
/// An `async` block takes its output type from the first `return` or tail
/// it meets, so `return Ok(Box::new(e))` would make it `Result<Box<E>, _>`
/// and no coercion to `Result<Box<dyn Error>, _>` would happen. A first,
/// never-taken `return` of a value of the declared type (`ret`) fixes the
/// output type before any of the user's code, which makes every later
/// `return` and the tail coercion sites against it, as in the plain function.
/// The value is matched out of a `None` rather than made by a diverging
/// expression so that a crate that forbids `unreachable_code` still builds;
/// the branch is a constant and compiles to nothing.
fn typed_async_body(block: &Block, ret: &Type, ret_span: Span) -> TokenStream {
    let value = Ident::new("__retry_return", Span::mixed_site());
    let mut body = quote_spanned! {Span::call_site().located_at(ret_span)=>
        if let ::core::option::Option::Some(#value) = ::core::option::Option::<#ret>::None {
            return #value;
        }
    };
    for stmt in &block.stmts {
        stmt.to_tokens(&mut body);
    }
    let mut group = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, body);
    group.set_span(block.brace_token.span.join());
    group.into_token_stream()
}

/// Whether `ty` holds an `impl Trait` anywhere.
fn has_impl_trait(ty: &Type) -> bool {
    let mut copy = ty.clone();
    replace_impl_trait(&mut copy);
    copy.to_token_stream().to_string() != ty.to_token_stream().to_string()
}

/// The `E` of a return type written `Result<T, E>` (any path to a type
/// named `Result`: `std::result::Result`, `anyhow::Result`), if written so.
/// An alias of another name is read through `IsResult` instead: its
/// parameters need not be `Result`'s (`type Flip<E, T> = Result<T, E>`).
fn error_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let _ok = types.next()?;
    types.next()
}

/// The success type of a return type written `...Result<T, E>`.
fn ok_type(output: &ReturnType) -> Option<&Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let Type::Path(path) = &**ty else { return None };
    let PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// `StreamOptions::new()` and a builder call for each setting written.
fn stream_options(p: &TokenStream, stream: &Streamed) -> TokenStream {
    let mut options = quote!(#p::StreamOptions::new());
    for (setting, value) in [
        ("first_event_timeout", stream.first_event_timeout),
        ("idle_timeout", stream.idle_timeout),
        ("stream_deadline", stream.stream_deadline),
    ] {
        if let Some(d) = value {
            let setting = Ident::new(setting, Span::call_site());
            let d = duration_tokens(p, d);
            options.extend(quote!(.#setting(#d)));
        }
    }
    let interrupt = match &stream.on_interrupt {
        None | Some(Interrupt::Fail) => None,
        Some(Interrupt::Restart) => Some(quote!(Restart)),
        Some(Interrupt::Resume(_)) => Some(quote!(Resume)),
    };
    if let Some(interrupt) = interrupt {
        options.extend(quote!(.on_interrupt(#p::OnInterrupt::#interrupt)));
    }
    options
}

/// `tokens` with every span set to `span`, so that errors about them point
/// at the user's code.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(g.span().located_at(span));
                tt = proc_macro2::TokenTree::Group(group);
            } else {
                tt.set_span(tt.span().located_at(span));
            }
            tt
        })
        .collect()
}

fn duration_tokens(p: &TokenStream, d: Duration) -> TokenStream {
    let secs = Literal::u64_unsuffixed(d.as_secs());
    let nanos = Literal::u32_unsuffixed(d.subsec_nanos());
    quote!(#p::duration(#secs, #nanos))
}

fn policy_tokens(p: &TokenStream, config: &Config) -> TokenStream {
    let mut policy = quote!(#p::Policy::new());
    if let Some(n) = config.max_attempts.written() {
        let n = Literal::u32_unsuffixed(*n);
        policy.extend(quote!(.max_attempts(#n)));
    }
    if let Some(wait) = config.wait.written() {
        let wait = match wait {
            Wait::None => quote!(#p::Wait::none()),
            Wait::Fixed(d) => {
                let d = duration_tokens(p, *d);
                quote!(#p::Wait::fixed(#d))
            }
            Wait::Exponential { base, cap, factor } => {
                let base = duration_tokens(p, *base);
                let cap = duration_tokens(p, *cap);
                let factor = Literal::f64_suffixed(*factor);
                quote!(#p::Wait::exponential_with_factor(#base, #cap, #factor))
            }
        };
        policy.extend(quote!(.wait(#wait)));
    }
    if let Some(jitter) = config.jitter.written() {
        let jitter = match jitter {
            Jitter::Full => quote!(Full),
            Jitter::Equal => quote!(Equal),
            Jitter::Decorrelated => quote!(Decorrelated),
            Jitter::None => quote!(None),
        };
        policy.extend(quote!(.jitter(#p::Jitter::#jitter)));
    }
    if let Some(kinds) = config.on.written() {
        let idents = kinds.iter().map(|k| &k.ident);
        policy.extend(quote!(.retry_on(#p::KindSet::empty() #(.with(#p::ErrorKind::#idents))*)));
        for kind in kinds {
            if let Some((cap, _)) = kind.cap {
                let ident = &kind.ident;
                let cap = Literal::u32_unsuffixed(cap);
                policy.extend(quote!(.kind_max_attempts(#p::ErrorKind::#ident, #cap)));
            }
        }
    }
    if let Some(d) = config.retry_after_cap.written() {
        let d = duration_tokens(p, *d);
        policy.extend(quote!(.retry_after_cap(#d)));
    }
    if let Some(limit) = config.deadline {
        let d = duration_tokens(p, limit.duration);
        policy.extend(quote!(.deadline(#d)));
    }
    if let Some(limit) = config.attempt_timeout {
        let d = duration_tokens(p, limit.duration);
        policy.extend(quote!(.attempt_timeout(#d)));
    }
    if let Some(kinds) = config.fallback_on.written() {
        policy.extend(quote!(.fallback_on(#p::KindSet::empty() #(.with(#p::ErrorKind::#kinds))*)));
    }
    policy
}

/// The function `func`, retried as `config` says.
pub(crate) fn expand(config: &Config, func: &ItemFn) -> TokenStream {
    let krate = &config.krate;
    let p = quote!(#krate::__private);
    let policy = policy_tokens(&p, config);
    let ItemFn {
        attrs, vis, block, ..
    } = func;
    let mut sig = func.sig.clone();
    // A streamed call's body may run again after the function returned
    // (a restart), so it takes its own copy of every argument.
    let cloned: Vec<Ident> = match &config.stream {
        Some(_) => sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(p) => Some(p.ident.clone()),
                    _ => None,
                },
                FnArg::Receiver(_) => None,
            })
            .collect(),
        None => config.clone.clone(),
    };
    let mut mutable = Vec::new();
    for arg in &mut sig.inputs {
        if let FnArg::Typed(typed) = arg {
            take_mut(&mut typed.pat, &cloned, &mut mutable);
        }
    }
    let ret = pinned_return_type(func);
    let site = Span::mixed_site();
    let clones = cloned.iter().map(|ident| {
        let clone = respan(quote!(::core::clone::Clone::clone), ident.span());
        let binding = if mutable.contains(ident) {
            quote!(mut #ident)
        } else {
            quote!(#ident)
        };
        quote_spanned!(Span::call_site().located_at(ident.span())=> let #binding = #clone(&#ident);)
    });
    let when = config
        .when
        .as_ref()
        .map_or_else(|| quote!(#p::always), ToTokens::to_token_stream);
    let on_retry = config
        .on_retry
        .as_ref()
        .map_or_else(|| quote!(#p::ignore), ToTokens::to_token_stream);

    // Errors about the error type (a missing `Classify`) point at the return
    // type: the call starts through a function that requires it.
    let error_span = match &sig.output {
        ReturnType::Type(_, ty) => error_type(ty).map_or_else(|| ty.span(), Spanned::span),
        ReturnType::Default => sig.ident.span(),
    };
    let is_async = sig.asyncness.is_some();
    // The error type, named for the call's start: as written in
    // `Result<T, E>`, else through the return type (an alias such as
    // `io::Result<T>`), else inferred (an alias whose success type is an
    // `impl Trait`, which cannot be named here).
    let error_ty = match &sig.output {
        ReturnType::Type(_, ty) => match error_type(ty) {
            Some(e) if !has_impl_trait(e) => e.to_token_stream(),
            Some(_) => quote!(_),
            None if has_impl_trait(ty) => quote!(_),
            None => quote!(#p::ErrorOf<#ty>),
        },
        ReturnType::Default => quote!(_),
    };
    let start = if is_async {
        respan(quote!(#p::start_async), error_span)
    } else {
        respan(quote!(#p::start_sync), error_span)
    };

    let span_name = &config.name;

    // How the call reports a refusal: an open breaker (with `breaker`), its
    // own deadline coming before it could send (the limiter's pacing) or
    // before its fallback ended (async), and an attempt cut off (async, with
    // `deadline` or `attempt_timeout`). Each conversion is spanned at the
    // argument that needs it, so that a missing `From` impl points there.
    let open_conversion = match &config.breaker {
        Some(breaker) => respan(quote!(#p::Some(#p::circuit_open)), breaker.key),
        None => quote!(#p::None),
    };
    let named_limiter = match &config.limiter {
        Limiter::Named(guard) => Some(guard),
        Limiter::Implicit | Limiter::Off => None,
    };
    let implicit_limiter = matches!(config.limiter, Limiter::Implicit);
    let deadline_conversion = match (&config.deadline, named_limiter) {
        (Some(deadline), _) if is_async => respan(quote!(#p::Some(#p::from_elapsed)), deadline.key),
        (_, Some(limiter)) => respan(quote!(#p::Some(#p::paced_past_deadline)), limiter.key),
        _ => quote!(#p::None),
    };
    let limit_span = config
        .deadline
        .map(|limit| limit.key)
        .or(config.attempt_timeout.map(|limit| limit.key));
    let cut_off_conversion = match limit_span {
        Some(span) if is_async => respan(quote!(#p::Some(#p::from_elapsed)), span),
        _ => quote!(#p::None),
    };

    let call = Ident::new("__retry_call", site);
    let mut bind_guards = TokenStream::new();
    let mut set_guards = TokenStream::new();
    if let Some(expr) = &config.cost {
        let span = expr.span();
        let set = respan(quote!(#p::set_cost), span);
        // Evaluated with the call's start, not when the call is made: it
        // may borrow what the body then moves.
        let cost = Ident::new("__retry_cost", site.located_at(span));
        bind_guards.extend(quote_spanned!(span=> let #cost: u64 = #expr;));
        set_guards.extend(quote!(#set(&mut #call, #cost);));
    }
    // The limiter goes into the call's start, written once with the rest.
    let mut limiter = quote!(#p::None);
    if implicit_limiter {
        // Each function's own limiter: off (one relaxed load per call) until
        // its first `429`.
        let ident = Ident::new("__RETRY_LIMITER", site);
        bind_guards.extend(quote! {
            static #ident: #p::AdaptiveLimiter = #p::implicit_limiter();
        });
        limiter = quote!(#p::Some(&#ident));
    }
    if let Some(guard) = named_limiter {
        let expr = &guard.expr;
        let span = expr.span();
        let ident = Ident::new("__retry_limiter", site.located_at(span));
        let named = respan(quote!(#p::limiter), span);
        bind_guards.extend(quote_spanned!(span=> let #ident = &(#expr);));
        limiter = quote_spanned!(span=> #named(#ident));
    }
    for (guard, name, setter) in [
        (config.breaker.as_ref(), "__retry_breaker", "set_breaker"),
        (config.budget.as_ref(), "__retry_budget", "set_budget"),
    ] {
        if let Some(guard) = guard {
            let expr = &guard.expr;
            // Spanned at the expression: a value of the wrong type is
            // reported there.
            let span = expr.span();
            let ident = Ident::new(name, site.located_at(span));
            let setter = Ident::new(setter, span);
            let set = respan(quote!(#p::#setter), span);
            bind_guards.extend(quote_spanned!(span=> let #ident = &(#expr);));
            set_guards.extend(quote_spanned!(span=> #set(&mut #call, #ident);));
        }
    }

    let ending = Ident::new("__retry_ending", site);
    let fallback = Ident::new("__retry_fallback", site);
    let has_fallback = config.fallback.is_some();
    // The end of the call: its result, or its fallback's.
    let end = match &config.fallback {
        None => quote!(#p::returned(#ending)),
        Some(path) => {
            let forwarded = sig.inputs.iter().map(|arg| match arg {
                FnArg::Receiver(r) => r.self_token.to_token_stream(),
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(p) => p.ident.to_token_stream(),
                    other => other.to_token_stream(),
                },
            });
            let fallback_call = quote_spanned!(path.span()=> #path(#(#forwarded),*));
            let run = if is_async {
                quote!(#fallback.run_async(#fallback_call).await)
            } else {
                quote!(#fallback.run_sync(|| #fallback_call))
            };
            quote! {
                match #ending {
                    #p::Ending::FallBack(#fallback, _) => #run,
                    #ending => #p::returned(#ending),
                }
            }
        }
    };

    let make_span = if config.stream.is_some() {
        quote!(#krate::__call_span!(#span_name, stream))
    } else {
        quote!(#krate::__call_span!(#span_name))
    };
    let start = |when: &TokenStream, on_retry: &TokenStream| {
        quote! {
            #start::<#error_ty, _, _>(
                &__RETRY_POLICY,
                &__RETRY_METRICS,
                #p::Refusals {
                    open: #open_conversion,
                    deadline: #deadline_conversion,
                    cut_off: #cut_off_conversion,
                },
                #when,
                #on_retry,
                || #make_span,
                #has_fallback,
                #limiter,
            )
        }
    };
    let call_mut = if set_guards.is_empty() {
        TokenStream::new()
    } else {
        quote!(mut)
    };
    // A streamed call is made at once. Any other starts light: its state is
    // made by `make` only if its first attempt fails or has to be admitted
    // (by a pacing limiter or a deadline), and `when` and `on_retry` are
    // evaluated then.
    let guarded = config.breaker.is_some() || config.budget.is_some();
    // A breaker or a budget sees every attempt, the first included: such a
    // call is made at once, as a streamed one is.
    let light_path = config.stream.is_none() && !guarded;
    let (start_call, make) = if !light_path {
        let start = start(&when, &on_retry);
        (
            quote! {
                let #call_mut #call = #start;
                #set_guards
            },
            TokenStream::new(),
        )
    } else {
        let start = start(&when, &on_retry);
        (
            TokenStream::new(),
            quote! {
                || {
                    let #call_mut #call = #start;
                    #set_guards
                    #call
                }
            },
        )
    };
    // What the first attempt needs before the call is made: a static when
    // every part of it is one (no limiter named), so that its checks read
    // constants; else a local.
    let mut light_new =
        quote!(#p::Light::new(&__RETRY_POLICY, &__RETRY_METRICS, #limiter, #guarded));
    if implicit_limiter {
        light_new.extend(quote!(.own_limiter()));
    }
    let (bind_light, light) = if !light_path {
        (TokenStream::new(), TokenStream::new())
    } else if named_limiter.is_none() {
        let ident = Ident::new("__RETRY_LIGHT", site);
        (
            quote!(static #ident: #p::Light<'static> = #light_new;),
            quote!(&#ident),
        )
    } else {
        let ident = Ident::new("__retry_light", site);
        (quote!(let #ident = #light_new;), quote!(&#ident))
    };

    let body_ident = Ident::new("__retry_body", site);
    let run = if let Some(stream) = &config.stream {
        let ret_span = match &sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => sig.ident.span(),
        };
        let body_ret: Type =
            syn::parse2(quote!(::core::result::Result<_, #error_ty>)).expect("a type");
        let block = typed_async_body(block, &body_ret, ret_span);
        let options = stream_options(&p, stream);
        let received = Ident::new("__retry_received", site);
        let resume = match &stream.on_interrupt {
            Some(Interrupt::Resume(name)) => quote_spanned! {name.span()=>
                let #name: #p::Received = ::core::clone::Clone::clone(#received);
            },
            _ => TokenStream::new(),
        };
        let format = &stream.format;
        let open = respan(quote!(#p::open_stream), stream.key);
        // The declared success type: an `impl Stream` is the retried stream
        // itself; a named type (the stream, or a boxed one) is made from it.
        let returned = match ok_type(&sig.output) {
            Some(ty) if has_impl_trait(ty) => quote!(#p::identity),
            Some(ty) => respan(quote!(#p::streamed), ty.span()),
            None => respan(quote!(#p::streamed), ret_span),
        };
        quote! {
            #krate::__require_stream!();
            const __RETRY_STREAM: #p::StreamOptions = #options;
            #returned(#open(#call, __RETRY_STREAM, #format, move |#received: &#p::Received| {
                #(#clones)*
                #resume
                async move #block
            }).await)
        }
    } else if is_async {
        let ret_span = match &sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => sig.ident.span(),
        };
        let block = typed_async_body(block, &ret, ret_span);
        let (lazy, turn) = if light_path {
            (
                quote!(let mut #call = #p::Lazy::new(#make);),
                if has_fallback {
                    quote!(#krate::__lazy_turn!(#call, #light, #body_ident))
                } else {
                    // A first attempt that succeeds returns at once.
                    quote!(#krate::__lazy_turn!(#call, #light, #body_ident, return))
                },
            )
        } else {
            (
                TokenStream::new(),
                quote!(#p::attempt_async::<#ret, _, _, _>(&mut #call, #body_ident).await),
            )
        };
        quote! {
            #lazy
            let #ending = loop {
                if let #p::Some(#ending) = {
                    #(#clones)*
                    // Pinned here, in this function's own future: the
                    // driver polls it in place, never moving it.
                    let #body_ident = ::core::pin::pin!(async #block);
                    #turn
                } {
                    break #ending;
                }
            };
        }
    } else {
        // Without clones, the body is the closure's own block: braces
        // around it would trip `unused_braces` in the user's crate.
        let clones: Vec<TokenStream> = clones.collect();
        let body = if clones.is_empty() {
            block.to_token_stream()
        } else {
            quote!({ #(#clones)* #block })
        };
        if light_path && !has_fallback {
            // Its result at once: `end` returns it as it is.
            quote! {
                let #ending = #p::run_sync_light_result::<#ret, _, _>(#light, #make, || #body);
            }
        } else if light_path {
            quote! {
                let #ending = #p::run_sync_light::<#ret, _, _>(#light, #make, || #body);
            }
        } else {
            quote! {
                let #ending = #p::run_sync::<#ret, _, _>(&mut #call, || #body);
            }
        }
    };

    let end = if config.stream.is_some() {
        TokenStream::new()
    } else if !is_async && light_path && !has_fallback {
        ending.to_token_stream()
    } else {
        end
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            const __RETRY_POLICY: #p::Policy = #policy;
            static __RETRY_METRICS: #p::MetricKeys = #p::MetricKeys::new(#span_name);
            #bind_guards
            #bind_light
            #start_call
            #run
            #end
        }
    }
}
