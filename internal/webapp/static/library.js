// The cue library, loaded once per view: every exercise's detail, and which
// exercise each variation belongs to.

import { get } from './api.js';

export async function loadLibrary() {
  const list = await get('/v1/exercises');
  const exercises = await Promise.all(list.items.map((e) => get(`/v1/exercises/${encodeURIComponent(e.slug)}`)));
  const byVariation = new Map();
  for (const ex of exercises) for (const v of ex.variations) byVariation.set(v.slug, { exercise: ex, variation: v });
  return { exercises, byVariation };
}

export const phaseLabels = {
  idle: 'Ready', up: 'Driving up', top: 'Lockout — hold', down: 'Lowering', bottom: 'Bottom', ended: 'Ended',
};
