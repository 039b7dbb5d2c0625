// The Python worker's tasks (python/tasks.py), declared for TypeScript: a name, the queue the
// Python worker consumes, and the argument and result types. No implementation: the web app only
// sends them, and Python runs them. Nothing checks these types against the Python code at
// runtime: keep them in step with python/tasks.py.
import { declareTask } from "@celery-ts/core";

/** The queue the Python worker consumes (`celery -A tasks worker -Q python`). */
export const PYTHON_QUEUE = "python";

/** `text.word_count(text)` in python/tasks.py: how many words a text has. */
export const wordCount = declareTask<[text: string], number>("text.word_count", {
  queue: PYTHON_QUEUE,
});

export interface ThumbnailSize {
  width: number;
  height: number;
}

/**
 * `images.thumbnail_size(width, height, max_side)` in python/tasks.py: the size of a thumbnail
 * that fits in max_side x max_side. Raises ValueError for a size that is not positive.
 */
export const thumbnailSize = declareTask<
  [width: number, height: number, maxSide: number],
  ThumbnailSize
>("images.thumbnail_size", { queue: PYTHON_QUEUE });
