-- Placeholder so that migrations stay numbered 1, 2, 3… on branch i11-push.
-- The parallel branches add their own 0006; delete this file when merging them.
SELECT 1;
