SELECT plan(2);
SELECT ok(true, 'truth holds');
SELECT is(1 + 1, 2, 'arithmetic holds');
CREATE TABLE must_not_survive (x int);
SELECT * FROM finish();
