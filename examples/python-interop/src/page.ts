// GET /: two forms, one per Python task. Each posts to the endpoint a JSON client would call, and
// the browser is sent on to the task's status, which waits a few seconds for the result.
export function indexPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>celery-ts and Python Celery</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  textarea, input { font: inherit; }
  textarea { width: 100%; }
  fieldset { margin-bottom: 1.5rem; }
  code { background: #f3f3f3; padding: 0 0.2em; }
</style>
</head>
<body>
<h1>Work for the Python worker</h1>
<p>Each form sends a task to the Python Celery worker (queue <code>python</code>) and answers at
once; you are then shown <code>GET /tasks/&lt;id&gt;</code>, the result the Python worker
stored.</p>
<form method="post" action="/word-count">
  <fieldset>
    <legend><code>text.word_count(text)</code></legend>
    <textarea name="text" rows="4" required>Celery workers in Python and TypeScript share one queue.</textarea>
    <button type="submit">Count the words</button>
  </fieldset>
</form>
<form method="post" action="/thumbnail-size">
  <fieldset>
    <legend><code>images.thumbnail_size(width, height, max_side)</code></legend>
    <label>width <input name="width" type="number" value="1920" required></label>
    <label>height <input name="height" type="number" value="1080" required></label>
    <label>max side <input name="max_side" type="number" value="256"></label>
    <button type="submit">Compute</button>
    <p>A width or height of 0 makes the Python task raise <code>ValueError</code>.</p>
  </fieldset>
</form>
</body>
</html>
`;
}
