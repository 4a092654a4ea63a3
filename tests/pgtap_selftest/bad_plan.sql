SELECT plan(3);
SELECT ok(true, 'only one of three runs');
SELECT * FROM finish();
