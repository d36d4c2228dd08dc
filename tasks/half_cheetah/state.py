"""Forward position of the torso (not in the observation)."""


def get_state(env, obs):
    return {"x_position": float(env.data.qpos[0])}
