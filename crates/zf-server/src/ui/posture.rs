//! The security posture page of the security administrator: every check with its verdict and
//! what was found, the worst first, so the page reads as a to-do list.

use axum::extract::State;
use axum::http::HeaderMap;
use maud::{html, Markup};
use zf_app::posture::Status;

use super::i18n::{Lang, Msg};
use super::{layout, time};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

fn verdict(lang: Lang, s: Status) -> &'static str {
    lang.t(match s {
        Status::Pass => Msg::PosturePass,
        Status::Warn => Msg::PostureWarn,
        Status::Fail => Msg::PostureFail,
    })
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let mut posture = state.app.posture_by(&auth.grant, &auth.meta).await?;
    posture.checks.sort_by_key(|c| std::cmp::Reverse(c.status));
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Posture),
        html! {
            p class={ "posture-" (posture.status.as_str()) } {
                strong { (verdict(lang, posture.status)) }
                " · " (posture.failed) " " (lang.t(Msg::PostureFailed))
                " · " (posture.warnings) " " (lang.t(Msg::PostureWarnings))
                " · " (time(posture.checked_at))
            }
            table.audit.posture {
                thead { tr {
                    th { (lang.t(Msg::Status)) } th { (lang.t(Msg::PostureCheck)) } th { (lang.t(Msg::Summary)) }
                } }
                tbody {
                    @for c in &posture.checks {
                        tr class={ "posture-" (c.status.as_str()) } data-check=(c.id) {
                            td { @if c.status == Status::Pass { (verdict(lang, c.status)) } @else { strong { (verdict(lang, c.status)) } } }
                            td { (c.title) }
                            td { (c.summary) }
                        }
                    }
                }
            }
        },
    ))
}
