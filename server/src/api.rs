//! The labs HTTP API: create and list labs (organizer), join with a code (observer), become the
//! facilitator with the lab's key, read a lab's summary, rotate the join code, end, delete and
//! export a lab (facilitator); store and serve the lab's photos (anyone of the lab).
//!
//! Every answer is JSON, a photo's bytes excepted; every error is
//! `{"error": "<what went wrong, in words>"}` with the fitting status. Credentials come as `Authorization: Bearer <token>` and never reach a log.

use std::sync::Arc;
use std::time::Duration;

use automerge::ActorId;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use labboard_protocol::board::{new_board, LabInfo};
use labboard_protocol::DocumentId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::access::ClientIp;
use crate::document::DocError;
use crate::export::{self, ExportError, Format, NoteCounts, Research, Table};
use crate::labs::{Grant, Issued, Lab, LabError, Role};
use crate::photometa::{self, StripError};
use crate::photos::{self, Put};
use crate::record::{self, Clock, RecordLab};
use crate::{secrets, AppState};

/// Largest request body the API reads; the largest real one is a lab's few short fields.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Failed joins (or facilitator logins) per client address per window before 429.
pub const MAX_FAILED_ATTEMPTS: usize = 10;
pub const FAILED_ATTEMPT_WINDOW: Duration = Duration::from_secs(60);

/// Longest title, school, grade or display name accepted, in characters.
const MAX_FIELD_CHARS: usize = 120;
const MAX_NAME_CHARS: usize = 60;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/labs", post(create_lab).get(list_labs))
        .route("/api/join", post(join))
        .route("/api/session", get(session))
        .route("/api/labs/{lab_id}/facilitate", post(facilitate))
        .route("/api/labs/{lab_id}/join-code", post(rotate_join_code))
        .route("/api/labs/{lab_id}", get(get_lab).delete(delete_lab))
        .route("/api/labs/{lab_id}/export", get(export))
        .route("/api/labs/{lab_id}/end", post(end_lab))
        .route(
            "/api/{*rest}",
            get(not_found).post(not_found).delete(not_found),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// `PUT` and `GET /api/labs/{labId}/photos/{sha256}`, with a body limit of their own: the
/// largest photo accepted.
pub fn photo_routes(max_photo_bytes: usize) -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/labs/{lab_id}/photos/{photo_id}",
            put(put_photo).get(get_photo),
        )
        .layer(DefaultBodyLimit::max(max_photo_bytes))
}

/// An API failure: a status and words for the person or program that sent the request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<Duration>,
    /// What the log says instead of `message`, when `message` may quote what the client sent
    /// (a join code or key typed as a number, say).
    logged_as: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            logged_as: None,
        }
    }

    /// An error whose message is sent to the client but not logged: the log says `logged_as`.
    fn quoting_the_request(mut self, logged_as: &'static str) -> Self {
        self.logged_as = Some(logged_as);
        self
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn too_many(wait: Duration) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "too many failed attempts from this address; try again in {} s",
                wait.as_secs().max(1)
            ),
            retry_after: Some(wait),
            logged_as: None,
        }
    }
}

impl From<LabError> for ApiError {
    fn from(err: LabError) -> Self {
        tracing::error!(error = %err, "lab storage failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not reach its storage; try again",
        )
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(err: crate::storage::StorageError) -> Self {
        LabError::Storage(err).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let logged = self.logged_as.unwrap_or(&self.message);
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %logged, "api request failed");
        } else {
            tracing::info!(status = %self.status, error = %logged, "api request refused");
        }
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs().max(1).to_string();
            if let Ok(value) = seconds.parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// A JSON body whose problems are answered in words: 413 when too large, 400 with the parse
/// error when malformed.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(_)
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
                    )
                }
                other => ApiError::bad_request(format!("could not read the request body: {other}")),
            })?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "request body is empty; send a JSON object",
            ));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|err| {
            // serde quotes the values it did not expect, and a value may be a secret.
            ApiError::bad_request(format!("invalid JSON body: {err}"))
                .quoting_the_request("invalid JSON body (details sent to the client only)")
        })
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer <token>` header",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "unreadable Authorization header"))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the Authorization header must be `Bearer <token>`",
            )
        })
}

fn is_organizer(app: &AppState, token: &str) -> bool {
    secrets::hash(token) == app.organizer_token_hash
}

pub(crate) fn require_organizer(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = bearer(headers)?;
    if is_organizer(app, token) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong organizer token",
        ))
    }
}

/// Who may run the lab: the server's organizer, or a facilitator token of this very lab.
async fn require_facilitator(
    app: &AppState,
    headers: &HeaderMap,
    lab_id: &str,
) -> Result<Lab, ApiError> {
    require_lab_token(app, headers, lab_id, true).await
}

/// The lab a request may act on: the organizer's token for any lab, else a token of this very
/// lab (a facilitator's when `facilitator_only`). A token of another lab gets the answer an
/// unknown lab gets: it learns nothing about this one.
async fn require_lab_token(
    app: &AppState,
    headers: &HeaderMap,
    lab_id: &str,
    facilitator_only: bool,
) -> Result<Lab, ApiError> {
    let token = bearer(headers)?;
    let lab_not_found = || ApiError::new(StatusCode::NOT_FOUND, "no such lab");
    if !is_organizer(app, token) {
        let grant = app.labs.grant(token).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                if facilitator_only {
                    "invalid or expired token; sign in as facilitator again"
                } else {
                    "invalid or expired token: join the lab again"
                },
            )
        })?;
        if grant.lab_id != lab_id {
            return Err(lab_not_found());
        }
        if facilitator_only && grant.role != Role::Facilitator {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "only the lab's facilitator can do this",
            ));
        }
    }
    app.labs.get(lab_id).await?.ok_or_else(lab_not_found)
}

fn clean_field(name: &str, value: Option<String>, required: bool) -> Result<String, ApiError> {
    let value = value.unwrap_or_default().trim().to_owned();
    if required && value.is_empty() {
        return Err(ApiError::bad_request(format!("`{name}` is required")));
    }
    if value.chars().count() > MAX_FIELD_CHARS {
        return Err(ApiError::bad_request(format!(
            "`{name}` is longer than {MAX_FIELD_CHARS} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "`{name}` contains control characters"
        )));
    }
    Ok(value)
}

fn clean_name(name: Option<String>, default: &str) -> Result<String, ApiError> {
    let name = name.unwrap_or_default().trim().to_owned();
    if name.is_empty() {
        return if default.is_empty() {
            Err(ApiError::bad_request(
                "`name` is required: the name others see on your notes",
            ))
        } else {
            Ok(default.to_owned())
        };
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "`name` must be at most {MAX_NAME_CHARS} characters of text"
        )));
    }
    Ok(name)
}

/// `YYYY-MM-DD` of a real calendar day.
fn valid_date(date: &str) -> bool {
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLab {
    title: Option<String>,
    school: Option<String>,
    grade: Option<String>,
    date: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    lab_id: String,
    doc_url: String,
    join_code: String,
    join_url: String,
    facilitator_key: String,
}

async fn create_lab(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateLab>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    require_organizer(&app, &headers)?;
    let info = LabInfo {
        title: clean_field("title", body.title, true)?,
        school: clean_field("school", body.school, false)?,
        grade: clean_field("grade", body.grade, false)?,
        date: clean_field("date", body.date, false)?,
    };
    if !info.date.is_empty() && !valid_date(&info.date) {
        return Err(ApiError::bad_request(format!(
            "`date` must be a day written YYYY-MM-DD, not `{}`",
            info.date
        )));
    }
    let lab_id = secrets::new_lab_id();
    let doc_id = DocumentId::random();
    // The document first: a crash before the lab row leaves an orphan that start-up removes.
    let board = new_board(&info, ActorId::random());
    app.store.append(doc_id, board.save()).await?;
    let key = secrets::new_facilitator_key();
    let code = app
        .labs
        .create(lab_id.clone(), doc_id, info, secrets::hash(&key))
        .await?;
    tracing::info!(lab_id = %lab_id, doc_id = %doc_id, "lab created");
    Ok((
        StatusCode::CREATED,
        Json(Created {
            join_url: app.join_url(&code),
            lab_id,
            doc_url: doc_id.url(),
            join_code: code,
            facilitator_key: key,
        }),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum LabState {
    Active,
    Ended,
}

/// A lab as its home page lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LabSummary {
    lab_id: String,
    title: String,
    school: String,
    grade: String,
    date: String,
    created_at: i64,
    /// When the lab ended (milliseconds since the epoch); `null` while it runs.
    ended_at: Option<i64>,
    state: LabState,
    /// How many devices ever joined the lab or signed in to it (distinct author ids).
    phones: usize,
    /// Notes on the board, hidden ones included; `null` if the board could not be read now.
    notes: Option<usize>,
    /// Of those, the ones the facilitator hid; `null` with `notes`.
    hidden_notes: Option<usize>,
    /// When the retention sweep deletes the lab (milliseconds since the epoch): its end plus
    /// `--retention`; `null` while it runs or without a retention.
    delete_at: Option<i64>,
}

/// The note counts of a lab's board; `None` (logged) if it cannot be read now, so that one
/// unreadable board does not hide the others.
async fn note_counts(app: &Arc<AppState>, lab: &Lab) -> Option<NoteCounts> {
    match app.registry.note_counts(lab.doc_id).await {
        Ok(Some(counts)) => Some(counts),
        Ok(None) => {
            tracing::warn!(lab_id = %lab.lab_id, doc_id = %lab.doc_id, "a lab's board is not loaded or stored");
            None
        }
        Err(err) => {
            tracing::warn!(lab_id = %lab.lab_id, doc_id = %lab.doc_id, error = %err, "could not count a lab's notes");
            None
        }
    }
}

async fn summary(app: &Arc<AppState>, lab: Lab, phones: usize) -> LabSummary {
    let counts = note_counts(app, &lab).await;
    let retention_ms = app
        .retention
        .map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX));
    let delete_at = lab
        .ended_at
        .zip(retention_ms)
        .map(|(ended, keep)| ended.saturating_add(keep));
    LabSummary {
        state: if lab.ended_at.is_some() {
            LabState::Ended
        } else {
            LabState::Active
        },
        phones,
        notes: counts.map(|c| c.notes),
        hidden_notes: counts.map(|c| c.hidden),
        delete_at,
        lab_id: lab.lab_id,
        title: lab.title,
        school: lab.school,
        grade: lab.grade,
        date: lab.date,
        created_at: lab.created_at,
        ended_at: lab.ended_at,
    }
}

/// Every lab, newest first (organizer).
async fn list_labs(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Vec<LabSummary>>, ApiError> {
    require_organizer(&app, &headers)?;
    let labs = app.labs.list().await?;
    let phones = app.labs.member_counts().await?;
    let mut summaries = Vec::with_capacity(labs.len());
    for lab in labs {
        let count = phones.get(&lab.lab_id).copied().unwrap_or(0);
        summaries.push(summary(&app, lab, count).await);
    }
    Ok(Json(summaries))
}

/// One lab's summary (its facilitator, or the organizer).
async fn get_lab(
    State(app): State<Arc<AppState>>,
    Path(lab_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<LabSummary>, ApiError> {
    let lab = require_facilitator(&app, &headers, &lab_id).await?;
    let phones = app.labs.member_count(&lab.lab_id).await?;
    Ok(Json(summary(&app, lab, phones).await))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Access {
    /// Absent from `/api/session`, whose caller already has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    doc_url: String,
    lab_id: String,
    title: String,
    role: Role,
    name: String,
    /// What this holder's notes, reactions and time-outs must carry as `authorId`.
    author_id: String,
    /// Milliseconds since the epoch.
    expires_at: i64,
    /// When the lab ended (milliseconds since the epoch); `null` while it runs. The board of
    /// an ended lab is read-only.
    ended_at: Option<i64>,
    /// The current join code and link, for facilitators (the board shows them).
    #[serde(skip_serializing_if = "Option::is_none")]
    join_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    join_url: Option<String>,
}

impl Access {
    fn new(app: &AppState, issued: Issued, lab: Lab) -> Self {
        let Grant {
            lab_id,
            doc_id,
            role,
            name,
            author_id,
            expires_at,
        } = issued.grant;
        // An ended lab's code joins nothing: it is not shown.
        let join_code = (role == Role::Facilitator && lab.ended_at.is_none())
            .then_some(lab.join_code)
            .flatten();
        Self {
            token: Some(issued.token),
            doc_url: doc_id.url(),
            lab_id,
            title: lab.title,
            role,
            name,
            author_id,
            expires_at,
            ended_at: lab.ended_at,
            join_url: join_code.as_deref().map(|code| app.join_url(code)),
            join_code,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinBody {
    code: Option<String>,
    name: Option<String>,
    /// A secret the device keeps, so that it gets the same author id every time it joins.
    device_key: Option<String>,
}

/// The device key of a join or sign-in, if it is one.
fn device_key(key: Option<&str>) -> Result<Option<&str>, ApiError> {
    match key {
        None => Ok(None),
        Some(key)
            if !key.is_empty()
                && key.chars().count() <= secrets::MAX_DEVICE_KEY_CHARS
                && !key.chars().any(char::is_control) =>
        {
            Ok(Some(key))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "`deviceKey` must be 1 to {} characters of text",
            secrets::MAX_DEVICE_KEY_CHARS
        ))),
    }
}

async fn join(
    State(app): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<JoinBody>,
) -> Result<Json<Access>, ApiError> {
    app.join_limiter.check(ip).map_err(ApiError::too_many)?;
    let name = clean_name(body.name, "")?;
    let device_key = device_key(body.device_key.as_deref())?;
    let code = body.code.unwrap_or_default();
    let lab = match secrets::normalize_join_code(&code) {
        Some(code) => app.labs.by_join_code(&code).await?,
        None => None,
    };
    let Some(lab) = lab else {
        app.join_limiter.record_failure(ip);
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no lab has this join code; check it or ask the facilitator for the current one",
        ));
    };
    let author_id = secrets::author_id(&lab.lab_id, device_key);
    let issued = app
        .labs
        .issue(&lab, Role::Observer, name, author_id)
        .await?;
    tracing::info!(lab_id = %lab.lab_id, "observer joined");
    Ok(Json(Access::new(&app, issued, lab)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FacilitateBody {
    key: Option<String>,
    name: Option<String>,
    device_key: Option<String>,
}

async fn facilitate(
    State(app): State<Arc<AppState>>,
    Path(lab_id): Path<String>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<FacilitateBody>,
) -> Result<Json<Access>, ApiError> {
    app.facilitate_limiter
        .check(ip)
        .map_err(ApiError::too_many)?;
    let name = clean_name(body.name, "Facilitator")?;
    let device_key = device_key(body.device_key.as_deref())?;
    let key = secrets::normalize_facilitator_key(&body.key.unwrap_or_default());
    let lab = app
        .labs
        .by_facilitator_key(&lab_id, secrets::hash(&key))
        .await?;
    let Some(lab) = lab else {
        app.facilitate_limiter.record_failure(ip);
        // The same answer for a wrong key and an unknown lab: nothing to learn from it.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong facilitator key for this lab",
        ));
    };
    let author_id = secrets::author_id(&lab.lab_id, device_key);
    let issued = app
        .labs
        .issue(&lab, Role::Facilitator, name, author_id)
        .await?;
    tracing::info!(lab_id = %lab.lab_id, "facilitator signed in");
    Ok(Json(Access::new(&app, issued, lab)))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinCode {
    join_code: String,
    join_url: String,
}

async fn rotate_join_code(
    State(app): State<Arc<AppState>>,
    Path(lab_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<JoinCode>, ApiError> {
    let lab = require_facilitator(&app, &headers, &lab_id).await?;
    if lab.ended_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this lab has ended; nobody can join it any more",
        ));
    }
    let code = app
        .labs
        .rotate_join_code(&lab.lab_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such lab"))?;
    tracing::info!(lab_id = %lab.lab_id, "join code rotated");
    Ok(Json(JoinCode {
        join_url: app.join_url(&code),
        join_code: code,
    }))
}

async fn delete_lab(
    State(app): State<Arc<AppState>>,
    Path(lab_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let lab = require_facilitator(&app, &headers, &lab_id).await?;
    remove_lab(&app, &lab).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why a lab could not be deleted completely; what was removed stays removed, and a board left
/// behind is removed at the next start as an orphan.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoveLabError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl From<RemoveLabError> for ApiError {
    fn from(err: RemoveLabError) -> Self {
        match err {
            RemoveLabError::Lab(err) => err.into(),
            RemoveLabError::Storage(err) => err.into(),
        }
    }
}

/// Deletes a lab completely: its record, tokens and codes, its connections and its board. Used
/// by `DELETE /api/labs/{labId}` and by the retention sweep.
pub(crate) async fn remove_lab(app: &AppState, lab: &Lab) -> Result<(), RemoveLabError> {
    // Access first: no token or code of the lab works from here on, so nobody can re-upload
    // the board while it is being removed.
    app.labs.delete(&lab.lab_id).await?;
    app.conns.kick_lab(&lab.lab_id, "this lab was deleted");
    app.registry.delete(lab.doc_id).await?;
    tracing::info!(lab_id = %lab.lab_id, doc_id = %lab.doc_id, "lab deleted");
    Ok(())
}

/// How long a client should wait before asking again for a board whose actor was stopping.
const EXPORT_RETRY_AFTER: Duration = Duration::from_secs(1);

impl From<ExportError> for ApiError {
    fn from(err: ExportError) -> Self {
        match err {
            ExportError::UnknownFormat(_) | ExportError::UnknownTable(_) => {
                Self::bad_request(err.to_string())
            }
            ExportError::Load(_) => {
                tracing::error!(error = %err, "export failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the lab's board could not be read",
                )
            }
            ExportError::Photos(err) => err.into(),
            ExportError::PhotoGone(_) => {
                tracing::info!(error = %err, "export found its lab deleted");
                Self::new(StatusCode::NOT_FOUND, "no such lab")
            }
            ExportError::TooLarge(_) => {
                tracing::error!(error = %err, "export failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportQuery {
    format: Option<String>,
    table: Option<String>,
    /// For `html`: the reader's time zone as minutes east of UTC (New York in winter: -300).
    utc_offset: Option<i32>,
}

/// The lab's board for archiving (`automerge`, or `zip` with its photos), as de-identified
/// research data (`json`, `csv`) or as its printable record (`html`): see [`export`].
async fn export(
    State(app): State<Arc<AppState>>,
    Path(lab_id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let lab = require_facilitator(&app, &headers, &lab_id).await?;
    let Query(query) = query.map_err(|err| {
        ApiError::bad_request(format!("invalid query string: {err}"))
            .quoting_the_request("invalid query string (details sent to the client only)")
    })?;
    let format = Format::parse(query.format.as_deref().ok_or_else(|| {
        ApiError::bad_request("`format` is required: json, csv, automerge, html or zip")
    })?)?;
    let table = query
        .table
        .as_deref()
        .map(Table::parse)
        .transpose()?
        .unwrap_or(Table::Notes);
    let utc_offset = query.utc_offset.unwrap_or(0);
    if utc_offset.abs() > record::MAX_UTC_OFFSET_MINUTES {
        return Err(ApiError::bad_request(format!(
            "`utcOffset` must be minutes east of UTC, from -{0} to {0}",
            record::MAX_UTC_OFFSET_MINUTES
        )));
    }
    let saved = match app.registry.read(lab.doc_id).await {
        Ok(Some(saved)) => saved,
        Ok(None) => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such lab")),
        Err(DocError::Stopped) => {
            return Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the lab's board could not be read just now; try again".into(),
                retry_after: Some(EXPORT_RETRY_AFTER),
                logged_as: None,
            })
        }
        Err(err) => {
            tracing::error!(lab_id = %lab.lab_id, doc_id = %lab.doc_id, error = %err, "export could not read the board");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the lab's board could not be read",
            ));
        }
    };
    let stem = export::file_stem(&lab.title);
    let (content_type, file, body) = match format {
        Format::Automerge => (
            "application/octet-stream",
            format!("{stem}.automerge"),
            saved,
        ),
        Format::Html => {
            let about = RecordLab {
                title: lab.title.clone(),
                school: lab.school.clone(),
                grade: lab.grade.clone(),
                date: lab.date.clone(),
                ended_at: lab.ended_at,
            };
            let clock = Clock {
                utc_offset_minutes: utc_offset,
                now_ms: crate::labs::now_ms(),
            };
            // Photos are read from the store on the blocking thread, one at a time.
            let photos = app.photos.reader();
            let lab_id = lab.lab_id.clone();
            let html = tokio::task::spawn_blocking(move || {
                record::render_saved(&about, &saved, clock, &|id| photos.get(&lab_id, id))
            })
            .await
            .map_err(|err| ExportError::Load(err.to_string()))??;
            (
                "text/html; charset=utf-8",
                format!("{stem}-record.html"),
                html.into_bytes(),
            )
        }
        Format::Zip => {
            let roles = app.labs.author_roles(&lab.lab_id).await?;
            let photos = app.photos.reader();
            let lab_id = lab.lab_id.clone();
            let now = crate::labs::now_ms();
            let zip = tokio::task::spawn_blocking(move || {
                export::archive(&lab_id, &saved, &roles, &photos, now)
            })
            .await
            .map_err(|err| ExportError::Load(err.to_string()))??;
            ("application/zip", format!("{stem}-export.zip"), zip)
        }
        Format::Json | Format::Csv => {
            let roles = app.labs.author_roles(&lab.lab_id).await?;
            let lab_id = lab.lab_id.clone();
            let research =
                tokio::task::spawn_blocking(move || Research::of_saved(&lab_id, &saved, &roles))
                    .await
                    .map_err(|err| ExportError::Load(err.to_string()))??;
            if format == Format::Json {
                let body = serde_json::to_vec_pretty(&research)
                    .expect("rows of strings, numbers and booleans serialize");
                ("application/json", format!("{stem}-research.json"), body)
            } else {
                (
                    "text/csv; charset=utf-8; header=present",
                    format!("{stem}-{}.csv", table.name()),
                    research.csv(table).into_bytes(),
                )
            }
        }
    };
    tracing::info!(lab_id = %lab.lab_id, format = ?format, bytes = body.len(), "lab exported");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Ended {
    lab_id: String,
    /// Milliseconds since the epoch; the same however often the lab is ended.
    ended_at: i64,
}

/// Ends the lab: its board becomes read-only for every connection and its join code stops
/// working. Ending it again answers the same `endedAt`.
async fn end_lab(
    State(app): State<Arc<AppState>>,
    Path(lab_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Ended>, ApiError> {
    let lab = require_facilitator(&app, &headers, &lab_id).await?;
    let ended_at = app
        .labs
        .end(&lab.lab_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such lab"))?;
    // Stored first, so that a restart keeps it; then the open board stops taking changes
    // before the answer goes out.
    app.registry.end(lab.doc_id).await;
    if lab.ended_at.is_none() {
        tracing::info!(lab_id = %lab.lab_id, doc_id = %lab.doc_id, "lab ended");
    }
    Ok(Json(Ended {
        lab_id: lab.lab_id,
        ended_at,
    }))
}

/// What the caller's token allows, so a client can tell an expired or revoked token (401)
/// from a network problem.
async fn session(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Access>, ApiError> {
    let token = bearer(&headers)?;
    let expired = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid or expired token: join the lab again",
        )
    };
    let grant = app.labs.grant(token).await?.ok_or_else(expired)?;
    let lab = app.labs.get(&grant.lab_id).await?.ok_or_else(expired)?;
    let mut access = Access::new(
        &app,
        Issued {
            token: String::new(),
            grant,
        },
        lab,
    );
    access.token = None;
    Ok(Json(access))
}

/// Who may store and see the lab's photos: anyone with a token of this very lab, whatever the
/// role, or the organizer. A token of another lab gets the answer an unknown lab gets.
async fn require_member(
    app: &AppState,
    headers: &HeaderMap,
    lab_id: &str,
) -> Result<Lab, ApiError> {
    require_lab_token(app, headers, lab_id, false).await
}

fn check_photo_id(id: &str) -> Result<(), ApiError> {
    if photos::valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "a photo's id is the SHA-256 of its bytes, written as 64 lowercase hex digits",
        ))
    }
}

/// `1 MiB`, `512 KiB` or `1000 bytes`: a size in the words a person reads.
fn size_in_words(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[derive(Debug, Serialize)]
struct StoredPhoto {
    id: String,
    /// Size as stored, metadata stripped.
    bytes: u64,
}

/// `PUT /api/labs/{labId}/photos/{sha256}`: stores a photo of student work (JPEG, PNG or WebP)
/// for the lab, stripped of its metadata, and answers once it is on disk: 201 when stored, 200
/// when the lab had it already.
async fn put_photo(
    State(app): State<Arc<AppState>>,
    Path((lab_id, photo_id)): Path<(String, String)>,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<StoredPhoto>), ApiError> {
    // Who and which photo before the body is read.
    let lab = require_member(&app, &headers, &lab_id).await?;
    check_photo_id(&photo_id)?;
    let max = app.photo_limits.max_photo_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the photo is larger than {} ({max} bytes), the most this server accepts",
                size_in_words(u64::try_from(max).unwrap_or(u64::MAX))
            ),
        )
    };
    let body = axum::body::Bytes::from_request(request, &())
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(_)
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                too_large()
            }
            other => ApiError::bad_request(format!("could not read the photo: {other}")),
        })?;
    if body.len() > max {
        return Err(too_large());
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("the photo is empty; send its bytes"));
    }
    if photos::id_of(&body) != photo_id {
        return Err(ApiError::bad_request(
            "the photo's bytes do not match its id: the id must be the SHA-256 of the bytes sent",
        ));
    }
    let (kind, stripped) = photometa::strip(&body).map_err(|err| {
        let message = match err {
            StripError::UnknownFormat => "a photo must be a JPEG, PNG or WebP image".to_owned(),
            StripError::Unreadable(err) => err.to_string(),
        };
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    })?;
    let uploaded = body.len();
    let limit = app.photo_limits.max_lab_photo_bytes;
    let put = app
        .photos
        .put(&lab.lab_id, &photo_id, kind.content_type(), stripped, limit)
        .await?;
    let (status, size) = match put {
        Put::Stored { size } => {
            tracing::info!(lab_id = %lab.lab_id, photo_id = %photo_id, kind = %kind, uploaded, stored = size, "photo stored");
            (StatusCode::CREATED, size)
        }
        Put::Existing { size } => (StatusCode::OK, size),
        Put::Ended => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this lab has ended; it takes no new photos",
            ))
        }
        Put::NoLab => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such lab")),
        Put::Full { used, limit } => {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "this lab's photo space is full: its photos may take {} in all and \
                     {} of it is used, too little is left for this photo of {}",
                    size_in_words(limit),
                    size_in_words(used),
                    size_in_words(u64::try_from(uploaded).unwrap_or(u64::MAX)),
                ),
            ))
        }
    };
    Ok((
        status,
        Json(StoredPhoto {
            id: photo_id,
            bytes: size,
        }),
    ))
}

/// Whether an `If-None-Match` header names the entity tag `etag` (weak or strong) or `*`.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// A photo never changes under its id: caches may keep it for a year, for this user only.
const PHOTO_CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// `GET /api/labs/{labId}/photos/{sha256}`: the photo's bytes, for anyone of the lab; 304 when
/// `If-None-Match` names it.
async fn get_photo(
    State(app): State<Arc<AppState>>,
    Path((lab_id, photo_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lab = require_member(&app, &headers, &lab_id).await?;
    check_photo_id(&photo_id)?;
    let no_photo = || ApiError::new(StatusCode::NOT_FOUND, "this lab has no such photo");
    let etag = format!("\"{photo_id}\"");
    let cache_headers = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, PHOTO_CACHE_CONTROL.to_owned()),
        // The answer depends on who asks.
        (header::VARY, "Authorization".to_owned()),
    ];
    if none_match(&headers, &etag) {
        return if app.photos.exists(&lab.lab_id, &photo_id).await? {
            Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response())
        } else {
            Err(no_photo())
        };
    }
    let photo = app
        .photos
        .get(&lab.lab_id, &photo_id)
        .await?
        .ok_or_else(no_photo)?;
    Ok((
        cache_headers,
        [(header::CONTENT_TYPE, photo.content_type)],
        photo.bytes,
    )
        .into_response())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_said_in_words() {
        assert_eq!(size_in_words(500 * 1024 * 1024), "500 MiB");
        assert_eq!(size_in_words(4 * 1024 * 1024), "4 MiB");
        assert_eq!(size_in_words(1536), "1536 bytes");
        assert_eq!(size_in_words(2048), "2 KiB");
        assert_eq!(size_in_words(1000), "1000 bytes");
    }

    #[test]
    fn if_none_match_names_the_photo_weak_strong_or_any() {
        let etag = "\"abc\"";
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, value.parse().unwrap());
            none_match(&headers, etag)
        };
        assert!(with("\"abc\""));
        assert!(with("W/\"abc\""));
        assert!(with("\"x\", \"abc\""));
        assert!(with("*"));
        assert!(!with("\"abcd\""));
        assert!(!with("abc"));
        assert!(!none_match(&HeaderMap::new(), etag));
    }

    #[test]
    fn dates_are_checked_against_the_calendar() {
        assert!(valid_date("2026-11-23"));
        assert!(valid_date("2024-02-29"));
        assert!(!valid_date("2026-02-29"));
        assert!(!valid_date("2026-13-01"));
        assert!(!valid_date("26-11-23"));
        assert!(!valid_date("2026/11/23"));
        assert!(!valid_date("2026-11-00"));
    }
}
