/**
 * What test/fixtures/sql-fake's /run does, as the database/sql spans gotel makes of it with statement capture
 * and parsing on: [span name, db.query.text] in the order /run makes them.
 */
export const SQL_FAKE_SPANS: [string, string | undefined][] = [
  ["SELECT a", "SELECT n FROM a"], ["INSERT b", "INSERT INTO b VALUES (1)"],
  ["BEGIN", undefined], ["UPDATE c", "UPDATE c SET x = 1"], ["COMMIT", undefined],
  ["BEGIN", undefined], ["ROLLBACK", undefined],
  ["SELECT d", "SELECT n FROM d"], ["DELETE e", "DELETE FROM e"],
  // db.Conn(ctx): its QueryContext and ExecContext
  ["SELECT f", "SELECT n FROM f"], ["UPDATE g", "UPDATE g SET x = 2"],
  // tx.Stmt(sel) (the DB's statement, in the transaction) and tx.PrepareContext: Stmt.QueryContext / ExecContext
  ["BEGIN", undefined], ["SELECT d", "SELECT n FROM d"], ["INSERT h", "INSERT INTO h VALUES (2)"], ["COMMIT", undefined],
  ["SELECT missing", "SELECT n FROM missing"],
];
