-- The tables scripts/postgrest-js/check.mjs works on (recreated each run).
DROP TABLE IF EXISTS pgjs_players, pgjs_teams;
CREATE TABLE pgjs_teams (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE pgjs_players (id int PRIMARY KEY, name text NOT NULL UNIQUE,
                           team_id int REFERENCES pgjs_teams (id), score int);
INSERT INTO pgjs_teams VALUES (1, 'red'), (2, 'blue');
INSERT INTO pgjs_players VALUES (1, 'ann', 1, 10), (2, 'bob', 1, 20), (3, 'cid', 2, 30);
