SELECT plan(2);
SELECT ok(true, 'runs before the error');
SELECT no_such_column FROM pg_class;
SELECT ok(true, 'never runs');
SELECT * FROM finish();
