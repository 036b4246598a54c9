use maud::{html, Markup, DOCTYPE};

use super::i18n::{Lang, Msg};
use crate::extract::Authorized;

fn head(lang: Lang, title: &str, script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · " (lang.t(Msg::AppName)) }
            link rel="stylesheet" href="/assets/app.css";
            // Only the pages that run a security-key ceremony load the one script.
            @if script { script src="/assets/webauthn.js" defer {} }
        }
    }
}

/// A page without the signed-in navigation (sign-in, errors).
pub fn bare(lang: Lang, title: &str, body: Markup) -> Markup {
    bare_with(lang, title, body, false)
}

/// [`bare`] with the security-key script (sign-in, its second step).
pub fn bare_webauthn(lang: Lang, title: &str, body: Markup) -> Markup {
    bare_with(lang, title, body, true)
}

fn bare_with(lang: Lang, title: &str, body: Markup, script: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang, title, script))
            body {
                header.top {
                    span.brand { (lang.t(Msg::AppName)) }
                    (language_switch(lang))
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn language_switch(lang: Lang) -> Markup {
    html! {
        nav.lang {
            @match lang {
                Lang::Zh => a href="/language?set=en" hreflang="en" { "English" },
                Lang::En => a href="/language?set=zh" hreflang="zh-CN" { "中文" },
            }
        }
    }
}

/// A page for a signed-in user: navigation, who is signed in, and a sign-out form.
pub fn page(lang: Lang, auth: &Authorized, title: &str, body: Markup) -> Markup {
    page_with(lang, auth, title, body, false)
}

/// [`page`] with the security-key script (security settings, step-up).
pub fn page_webauthn(lang: Lang, auth: &Authorized, title: &str, body: Markup) -> Markup {
    page_with(lang, auth, title, body, true)
}

fn page_with(lang: Lang, auth: &Authorized, title: &str, body: Markup, script: bool) -> Markup {
    let may = |resource| {
        auth.grant.may(zf_policy::Permission::new(
            resource,
            zf_policy::Action::Read,
        ))
    };
    let user = auth.session.as_ref().map(|s| {
        (
            s.principal.username.as_str().to_owned(),
            s.principal
                .custom_role
                .as_ref()
                .map_or(s.principal.role.label_zh(), |c| c.label())
                .to_owned(),
        )
    });
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang, title, script))
            body {
                header.top {
                    a.brand href="/" { (lang.t(Msg::AppName)) }
                    nav.main {
                        @if may(zf_policy::Resource::Client) { a href="/clients" { (lang.t(Msg::Clients)) } " " }
                        @if may(zf_policy::Resource::FilingTask) { a href="/deadlines" { (lang.t(Msg::Deadlines)) } " " }
                        @else if may(zf_policy::Resource::Interaction) { a href="/follow-ups" { (lang.t(Msg::FollowUps)) } " " }
                        @if may(zf_policy::Resource::Lead) { a href="/leads" { (lang.t(Msg::Leads)) } " " }
                        @if may(zf_policy::Resource::Payment) { a href="/arrears" { (lang.t(Msg::ArrearsReport)) } " " }
                        @if auth.grant.may(zf_policy::Permission::new(zf_policy::Resource::ClientAssignment, zf_policy::Action::Approve)) { a href="/reassignments" { (lang.t(Msg::Reassignments)) } " " }
                        @if auth.grant.may(zf_policy::Permission::new(zf_policy::Resource::Client, zf_policy::Action::Approve)) { a href="/erasures" { (lang.t(Msg::Erasures)) } " " }
                        @if auth.grant.may(zf_policy::Permission::new(zf_policy::Resource::RoleAssignment, zf_policy::Action::Approve)) { a href="/team-review" { (lang.t(Msg::Reviews)) } " " }
                        @if may(zf_policy::Resource::AuditLog) { a href="/audit" { (lang.t(Msg::AuditLog)) } }
                        @if may(zf_policy::Resource::Alert) { a href="/alerts" { (lang.t(Msg::Alerts)) } " " }
                        @if may(zf_policy::Resource::Backup) { a href="/backups" { (lang.t(Msg::Backups)) } " " }
                        @if may(zf_policy::Resource::SecurityPolicy) { a href="/posture" { (lang.t(Msg::Posture)) } " " }
                        @if may(zf_policy::Resource::RoleAssignment) { a href="/users" { (lang.t(Msg::Users)) } " " a href="/roles" { (lang.t(Msg::Roles)) } " " a href="/reviews" { (lang.t(Msg::Reviews)) } }
                    }
                    @if let Some((name, role)) = user {
                        span.user {
                            (lang.t(Msg::SignedInAs)) " " strong { (name) } " (" (role) ") "
                            a href="/mfa" { (lang.t(Msg::Security)) } " "
                            a href="/sessions" { (lang.t(Msg::Sessions)) } " "
                            a href="/tokens" { (lang.t(Msg::ApiTokens)) }
                        }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(auth.csrf_token.as_deref().unwrap_or(""));
                            button type="submit" { (lang.t(Msg::SignOut)) }
                        }
                    }
                    (language_switch(lang))
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}
