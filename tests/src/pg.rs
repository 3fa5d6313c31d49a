//! PostgreSQL for the tests, these and (included as a module) the server's unit tests:
//! `scripts/test` starts a throwaway server and exports `LABBOARD_TEST_DATABASE_URL` (see
//! `scripts/lib/postgres.sh`); every test makes a database of its own on it, so tests run side
//! by side without seeing each other's labs.

/// The variable naming the test server's administrative database.
pub const URL_VAR: &str = "LABBOARD_TEST_DATABASE_URL";

/// The URL of the test server's `postgres` database. Panics with what to do when it is unset:
/// the PostgreSQL tests are part of every run of `scripts/test`.
pub fn admin_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} is not set: run the tests with scripts/test, which starts PostgreSQL, or \
             source scripts/lib/postgres.sh and run ensure_postgres first"
        )
    })
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| {
            let rest = &base[scheme + 3..];
            scheme + 3 + rest.find('/').unwrap_or(rest.len())
        })
        .expect("a postgres:// URL");
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The name of the database `url` names.
pub fn database_name(url: &str) -> &str {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or(base)
}

/// `url` with its user replaced by `user` (and no password).
pub fn with_user(url: &str, user: &str) -> String {
    let scheme_end = url.find("://").expect("a postgres:// URL") + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => host,
        None => &rest[..authority_end],
    };
    format!(
        "{}{user}@{host}{}",
        &url[..scheme_end],
        &rest[authority_end..]
    )
}

/// Runs `statements` on the database at `url`.
pub async fn execute(url: &str, statements: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| panic!("connecting to the test PostgreSQL server: {err}"));
    let driver = tokio::spawn(connection);
    client
        .batch_execute(statements)
        .await
        .unwrap_or_else(|err| panic!("{statements}: {err}"));
    drop(client);
    let _closed = driver.await;
}

/// The number of rows `query` (a `SELECT count(*) …`) counts on the database at `url`.
pub async fn count(url: &str, query: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| panic!("connecting to the test PostgreSQL server: {err}"));
    let driver = tokio::spawn(connection);
    let count = client
        .query_one(query, &[])
        .await
        .unwrap_or_else(|err| panic!("{query}: {err}"))
        .get(0);
    drop(client);
    let _closed = driver.await;
    count
}

/// Creates an empty database of its own for one test and returns its URL.
pub async fn scratch_database() -> String {
    let admin = admin_url();
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| panic!("connecting to the test PostgreSQL server: {err}"));
    let driver = tokio::spawn(connection);
    let name = format!("lb_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|err| panic!("creating database {name}: {err}"));
    drop(client);
    let _closed = driver.await;
    with_database(&admin, &name)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_read_from_the_url() {
        use super::database_name;
        assert_eq!(database_name("postgres://u@/lb_1?host=/run/pg"), "lb_1");
        assert_eq!(database_name("postgres://u:p@127.0.0.1:5432/db"), "db");
    }

    #[test]
    fn the_user_is_replaced_whatever_the_url_carries() {
        use super::with_user;
        assert_eq!(
            with_user("postgres://u@/lb_1?host=/run/pg", "other"),
            "postgres://other@/lb_1?host=/run/pg"
        );
        assert_eq!(
            with_user("postgres://u:p@127.0.0.1:5432/db", "other"),
            "postgres://other@127.0.0.1:5432/db"
        );
        assert_eq!(
            with_user("postgres://localhost/db", "other"),
            "postgres://other@localhost/db"
        );
    }

    #[test]
    fn the_database_name_is_replaced_whatever_the_url_carries() {
        assert_eq!(
            with_database("postgres://u@/postgres?host=/run/pg", "lb_1"),
            "postgres://u@/lb_1?host=/run/pg"
        );
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/postgres", "lb_2"),
            "postgres://u:p@127.0.0.1:5432/lb_2"
        );
        assert_eq!(
            with_database("postgresql://u@localhost", "lb_3"),
            "postgresql://u@localhost/lb_3"
        );
    }
}
