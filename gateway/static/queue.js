// Runs jobs with a bounded number in flight, in the order they were added.

export function createQueue(maxInFlight) {
  const waiting = [];
  let running = 0;

  function pump() {
    while (running < maxInFlight && waiting.length > 0) {
      const job = waiting.shift();
      running += 1;
      Promise.resolve()
        .then(job)
        .finally(() => {
          running -= 1;
          pump();
        });
    }
  }

  return {
    add(job) {
      waiting.push(job);
      pump();
    },
  };
}
