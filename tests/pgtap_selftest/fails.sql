SELECT plan(2);
SELECT ok(true, 'first passes');
SELECT is(40 + 1, 42, 'the answer is 42');
SELECT * FROM finish();
