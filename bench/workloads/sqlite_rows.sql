-- The sqlite3 shell on an in-memory database: insert 200,000 rows, index
-- them, run grouping, joining and sorting queries, update and delete.
-- Usage: sqlite3 :memory: < sqlite_rows.sql
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, region INTEGER, score REAL, note TEXT);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO customers SELECT x, printf('customer-%08d', (x * 7919) % 200003), x % 97, (x * 31 % 1000) / 10.0,
                             substr('lorem ipsum dolor sit amet consectetur adipiscing elit', 1 + x % 20, 20 + x % 30)
FROM c;
COMMIT;
CREATE INDEX customers_name ON customers(name);
CREATE INDEX customers_region ON customers(region, score);
CREATE TABLE regions AS SELECT region, count(*) AS n, avg(score) AS mean FROM customers GROUP BY region;
UPDATE customers SET score = score + 1 WHERE region % 5 = 0;
DELETE FROM customers WHERE id % 11 = 0;
SELECT 'checksum=' || (
  (SELECT count(*) FROM customers) +
  (SELECT sum(length(name) + length(note)) FROM customers WHERE name > 'customer-00100000') +
  (SELECT count(*) FROM customers c JOIN regions r ON c.region = r.region WHERE c.score > r.mean) +
  (SELECT sum(n) FROM (SELECT region, count(DISTINCT substr(note, 1, 5)) AS n FROM customers GROUP BY region)) +
  (SELECT count(*) FROM (SELECT name FROM customers ORDER BY note, score DESC LIMIT 50000)));
