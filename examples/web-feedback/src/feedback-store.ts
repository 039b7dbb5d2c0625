// Where feedback is kept: one JSON object a line, appended to a file. Small enough to read in a
// text editor; a real app would use its database.
import { randomUUID } from "node:crypto";
import { appendFile, readFile } from "node:fs/promises";

export interface FeedbackInput {
  name: string;
  email: string;
  message: string;
}

export interface Feedback extends FeedbackInput {
  id: string;
  /** ISO 8601. */
  createdAt: string;
}

export interface FeedbackStore {
  add(input: FeedbackInput): Promise<Feedback>;
  get(id: string): Promise<Feedback | undefined>;
  list(): Promise<Feedback[]>;
}

export function createFeedbackStore(path: string): FeedbackStore {
  const list = async (): Promise<Feedback[]> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    return text
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as Feedback);
  };
  return {
    async add(input) {
      const feedback: Feedback = {
        id: randomUUID(),
        createdAt: new Date().toISOString(),
        ...input,
      };
      await appendFile(path, `${JSON.stringify(feedback)}\n`);
      return feedback;
    },
    async get(id) {
      return (await list()).find((feedback) => feedback.id === id);
    },
    list,
  };
}
