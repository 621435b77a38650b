//! One way to run the intake's statements on two kinds of connection.
//!
//! A delivery is recorded by the same code ([`crate::intake`]) on sqlx's connections and, for
//! SQLite's group commit, on a rusqlite connection of its own ([`crate::group`]). With sqlx,
//! every statement is a round trip to the connection's thread, and a group takes about ten;
//! with rusqlite, called on a blocking thread, the whole group is one hop. A statement is its
//! SQL and its bound values ([`Bound`]); its rows come back as tuples ([`Row`]).

use crate::{Backend, StoreError};
use rusqlite::types::{FromSql, ToSqlOutput, ValueRef};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Decode, Type};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// A value bound to a statement. A NULL keeps its column's type: PostgreSQL checks it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bound<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
}

impl<'a> From<&'a str> for Bound<'a> {
    fn from(value: &'a str) -> Self {
        Bound::Text(Some(value))
    }
}

impl<'a> From<Option<&'a str>> for Bound<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Bound::Text(value)
    }
}

impl From<i64> for Bound<'_> {
    fn from(value: i64) -> Self {
        Bound::Int(Some(value))
    }
}

impl From<Option<i64>> for Bound<'_> {
    fn from(value: Option<i64>) -> Self {
        Bound::Int(value)
    }
}

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Bound::Text(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Bound::Int(Some(int)) => ToSqlOutput::from(int),
            Bound::Text(None) | Bound::Int(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// A row read back as a tuple, from either kind of connection.
pub(crate) trait Row: Sized {
    /// The row from sqlx.
    fn from_sqlx(row: &AnyRow) -> Result<Self, sqlx::Error>;
    /// The row from rusqlite.
    fn from_rusqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// A column type both connections decode.
pub(crate) trait Column: for<'r> Decode<'r, Any> + Type<Any> + FromSql + Send {}

impl<T: for<'r> Decode<'r, Any> + Type<Any> + FromSql + Send> Column for T {}

macro_rules! tuple_rows {
    ($($name:ident $index:tt),+) => {
        impl<$($name: Column),+> Row for ($($name,)+) {
            fn from_sqlx(row: &AnyRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok(($(row.try_get::<$name, _>($index)?,)+))
            }

            fn from_rusqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $name>($index)?,)+))
            }
        }
    };
}

tuple_rows!(A 0);
tuple_rows!(A 0, B 1);
tuple_rows!(A 0, B 1, C 2);
tuple_rows!(A 0, B 1, C 2, D 3);

/// A connection the intake's statements run on.
pub(crate) trait Exec: Send {
    /// How its placeholders are written.
    fn backend(&self) -> Backend;

    /// Runs a statement that returns rows.
    fn fetch<R: Row + Send>(
        &mut self,
        sql: String,
        values: Vec<Bound<'_>>,
    ) -> impl Future<Output = Result<Vec<R>, StoreError>> + Send;

    /// Runs a statement for its effect.
    fn execute(
        &mut self,
        sql: String,
        values: Vec<Bound<'_>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A statement built from literal SQL and placeholders alone: nothing from a delivery is
/// spliced in, every value is bound.
fn audited(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

/// A sqlx connection (in a transaction of the caller's) and its backend.
pub(crate) struct Sqlx<'c> {
    pub(crate) conn: &'c mut AnyConnection,
    pub(crate) backend: Backend,
}

/// The values bound, in order, to a sqlx query.
fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    values: &[Bound<'q>],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for value in values {
        query = match *value {
            Bound::Text(text) => query.bind(text),
            Bound::Int(int) => query.bind(int),
        };
    }
    query
}

impl Exec for Sqlx<'_> {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn fetch<R: Row + Send>(
        &mut self,
        sql: String,
        values: Vec<Bound<'_>>,
    ) -> Result<Vec<R>, StoreError> {
        let query = bind_all(sqlx::query(audited(sql)), &values);
        let rows = query.fetch_all(&mut *self.conn).await?;
        Ok(rows.iter().map(R::from_sqlx).collect::<Result<_, _>>()?)
    }

    async fn execute(&mut self, sql: String, values: Vec<Bound<'_>>) -> Result<(), StoreError> {
        let query = bind_all(sqlx::query(audited(sql)), &values);
        query.execute(&mut *self.conn).await?;
        Ok(())
    }
}

/// A rusqlite connection (in a transaction of the caller's): SQLite, statements run at once.
pub(crate) struct Local<'c>(pub(crate) &'c mut rusqlite::Connection);

impl Exec for Local<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn fetch<R: Row + Send>(
        &mut self,
        sql: String,
        values: Vec<Bound<'_>>,
    ) -> Result<Vec<R>, StoreError> {
        let mut statement = self.0.prepare_cached(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(&values), R::from_rusqlite)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn execute(&mut self, sql: String, values: Vec<Bound<'_>>) -> Result<(), StoreError> {
        let mut statement = self.0.prepare_cached(&sql)?;
        statement.execute(rusqlite::params_from_iter(&values))?;
        Ok(())
    }
}

/// Runs to its end a future that never waits: one whose statements all run on a [`Local`]
/// connection, which answers at once.
pub(crate) fn at_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("a rusqlite statement never waits"),
    }
}
