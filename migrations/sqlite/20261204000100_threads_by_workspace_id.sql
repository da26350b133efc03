-- Inbox listings of one workspace walk its threads newest first without sorting.
CREATE INDEX threads_by_workspace_id ON threads (workspace, id);
