// Sign-in page: posts the credentials as JSON; the console answers with an
// HttpOnly session cookie. Messages are shown with textContent only.
'use strict';
document.getElementById('signin').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = document.getElementById('signin-error');
  const button = document.getElementById('signin-button');
  error.textContent = '';
  button.disabled = true;
  try {
    const response = await fetch('/api/v1/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify({
        username: document.getElementById('username').value,
        password: document.getElementById('password').value,
      }),
    });
    if (response.ok) {
      window.location.assign('/#/results');
      return;
    }
    let message = 'Sign-in failed.';
    try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
    if (response.status === 401) message = 'Wrong user name or password.';
    error.textContent = message;
  } catch (e) {
    error.textContent = 'The console cannot be reached.';
  } finally {
    button.disabled = false;
  }
});
