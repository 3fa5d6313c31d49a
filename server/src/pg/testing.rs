//! PostgreSQL for the unit tests: `scripts/test` starts a throwaway server and exports
//! `LABBOARD_TEST_DATABASE_URL` (see `scripts/lib/postgres.sh`); every test makes a database of
//! its own on it, so tests run side by side without seeing each other's labs. The same as the
//! tests crate's `pg` module, which this crate cannot depend on.

/// The variable naming the test server's administrative database.
const URL_VAR: &str = "LABBOARD_TEST_DATABASE_URL";

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
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

/// Creates an empty database of its own for one test and returns its URL. Panics with what to
/// do when the test server is not named: the PostgreSQL tests are part of every run.
pub async fn scratch_database() -> String {
    let admin = std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} is not set: run the tests with scripts/test, which starts PostgreSQL, or \
             source scripts/lib/postgres.sh and run ensure_postgres first"
        )
    });
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

mod tests {
    use super::with_database;

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
    }
}
